// ArgMax / ArgMin along the middle axis of a (outer, R, inner) array of T with a
// work-group tree of (value, index) pairs, one work-group per output. As numpy's
// argmax, a nan wins over any number; ties (nan ties included) go to the first
// index, or to the last with "last". FLOAT is defined for floating-point T; float16
// data (HALF_IN, see half_io.cl) is compared as float.
#define WG 64
#ifdef FLOAT
#define IS_NAN(v) isnan(v)
#else
#define IS_NAN(v) 0
#endif

// does value v at index i beat value w at index j (j < 0: nothing yet)?
inline int better(T v, long i, T w, long j, int is_min, int last) {
    if (j < 0) return 1;
    if (i < 0) return 0;
    const int tie = last ? i > j : i < j;
    if (IS_NAN(w)) return IS_NAN(v) && tie;
    if (IS_NAN(v)) return 1;
    if (v == w) return tie;
    return is_min ? v < w : v > w;
}

__kernel void argreduce(__global long* y, __global const IN_T* x, const long R, const long inner,
                        const int is_min, const int last)
{
    __local T val[WG];
    __local long idx[WG];
    const long g = get_group_id(0);
    const int lid = get_local_id(0);
    const long base = (g / inner) * R * inner + g % inner;
    T best = 0;
    long at = -1;
    for (long r = lid; r < R; r += WG) {
        const T v = LOAD_X(base + r * inner);
        if (better(v, r, best, at, is_min, last)) {
            best = v;
            at = r;
        }
    }
    val[lid] = best;
    idx[lid] = at;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s && better(val[lid + s], idx[lid + s], val[lid], idx[lid], is_min, last)) {
            val[lid] = val[lid + s];
            idx[lid] = idx[lid + s];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        y[g] = idx[0];
}
