// Reduction of the middle axis of a (outer, R, inner) array with a work-group tree:
// one work-group per output element; its items stride over R, then combine their
// partial results pairwise in local memory. The combination is a sum unless OP_MAX,
// OP_MIN, OP_PROD or OP_LOGSUMEXP is defined; MAP_ABS or MAP_SQUARE transforms each
// loaded value, FINISH_SQRT the result, and "scale" multiplies it (1/R for a mean).
// OP_LOGSUMEXP takes the max first, then sums exp(x - max), shifting by 0 instead
// when the max is infinite. Max and min let a nan on either side win, as numpy's do.
// float16 data is read on the first pass and written on the last (half_io.cl); every
// pass accumulates in float.
#define WG 64

inline float load(float v) {
#if defined(MAP_ABS)
    return fabs(v);
#elif defined(MAP_SQUARE)
    return v * v;
#else
    return v;
#endif
}

inline float sum(float x, float v) { return x + v; }
inline float max_nan(float x, float v) { return (isnan(x) || x > v) ? x : v; }

#if defined(OP_MAX) || defined(OP_LOGSUMEXP)
#define IDENTITY (-INFINITY)
#define COMBINE max_nan
#elif defined(OP_MIN)
#define IDENTITY INFINITY
inline float min_nan(float x, float v) { return (isnan(x) || x < v) ? x : v; }
#define COMBINE min_nan
#elif defined(OP_PROD)
#define IDENTITY 1.0f
inline float prod(float x, float v) { return x * v; }
#define COMBINE prod
#else
#define IDENTITY 0.0f
#define COMBINE sum
#endif

// every item's partial result combined over the work-group (with ``combine``)
#define GROUP_COMBINE(result, combine, acc)                      \
    barrier(CLK_LOCAL_MEM_FENCE);                                \
    part[lid] = acc;                                             \
    barrier(CLK_LOCAL_MEM_FENCE);                                \
    for (int s = WG / 2; s > 0; s >>= 1) {                       \
        if (lid < s)                                             \
            part[lid] = combine(part[lid], part[lid + s]);       \
        barrier(CLK_LOCAL_MEM_FENCE);                            \
    }                                                            \
    result = part[0];

__kernel void reduce(__global OUT_T* y, __global const IN_T* x,
                     const long R, const long inner, const float scale)
{
    __local float part[WG];
    const long g = get_group_id(0);
    const int lid = get_local_id(0);
    const long base = (g / inner) * R * inner + g % inner;
    float acc = IDENTITY, result;
    for (long r = lid; r < R; r += WG)
        acc = COMBINE(acc, load(LOAD_X(base + r * inner)));
    GROUP_COMBINE(result, COMBINE, acc)
#ifdef OP_LOGSUMEXP
    const float shift = isinf(result) ? 0.0f : result;
    float total = 0.0f;
    for (long r = lid; r < R; r += WG)
        total += exp(load(LOAD_X(base + r * inner)) - shift);
    GROUP_COMBINE(result, sum, total)
    result = log(result) + shift;
#endif
#ifdef FINISH_SQRT
    result = sqrt(result);
#endif
    if (lid == 0)
        STORE_Y(g, result * scale);
}
