// Reduction of the middle axis of a (outer, R, inner) array with a work-group tree:
// one work-group per output element; its items stride over R, then combine their
// partial results pairwise in local memory. OP_MAX selects max, else sum; "scale" multiplies the
// result (1/R for a mean).
#define WG 64

inline float combine(float x, float v) {
#ifdef OP_MAX
    return (isnan(x) || x > v) ? x : v;
#else
    return x + v;
#endif
}

__kernel void reduce(__global float* y, __global const float* x,
                     const long R, const long inner, const float scale)
{
    __local float part[WG];
    const long g = get_group_id(0);
    const int lid = get_local_id(0);
    const long o = g / inner, in = g % inner;
#ifdef OP_MAX
    float acc = -INFINITY;
#else
    float acc = 0.0f;
#endif
    for (long r = lid; r < R; r += WG)
        acc = combine(acc, x[(o * R + r) * inner + in]);
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s)
            part[lid] = combine(part[lid], part[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0)
        y[g] = part[0] * scale;
}
