// Reduction of the middle axis of a (outer, R, inner) array with a work-group tree:
// one work-group per output element; its items stride over R, then combine their
// partial results pairwise in local memory. "op" picks the combination (OP_*),
// "map" transforms each loaded value (MAP_*), "finish" the result (FINISH_*), and
// "scale" multiplies it (1/R for a mean). OP_LOGSUMEXP takes the max first, then
// sums exp(x - max), shifting by 0 instead when the max is infinite.
#define WG 64
#define OP_SUM 0
#define OP_PROD 1
#define OP_MAX 2
#define OP_MIN 3
#define OP_LOGSUMEXP 4
#define MAP_NONE 0
#define MAP_ABS 1
#define MAP_SQUARE 2
#define FINISH_NONE 0
#define FINISH_SQRT 1

inline float identity(int op) {
    switch (op) {
    case OP_PROD: return 1.0f;
    case OP_MAX: return -INFINITY;
    case OP_MIN: return INFINITY;
    default: return 0.0f;
    }
}

// max and min let a nan on either side win, as numpy's maximum and minimum do
inline float combine(int op, float x, float v) {
    switch (op) {
    case OP_PROD: return x * v;
    case OP_MAX: return (isnan(x) || x > v) ? x : v;
    case OP_MIN: return (isnan(x) || x < v) ? x : v;
    default: return x + v;
    }
}

inline float load(int map, float v) {
    return map == MAP_ABS ? fabs(v) : (map == MAP_SQUARE ? v * v : v);
}

// combine the work-group's partial results in part[0..WG); every item gets the result
inline float group_combine(int op, __local float* part, int lid, float acc) {
    barrier(CLK_LOCAL_MEM_FENCE);
    part[lid] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s)
            part[lid] = combine(op, part[lid], part[lid + s]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return part[0];
}

__kernel void reduce(__global float* y, __global const float* x, const long R, const long inner,
                     const int op, const int map, const int finish, const float scale)
{
    __local float part[WG];
    const long g = get_group_id(0);
    const int lid = get_local_id(0);
    const long base = (g / inner) * R * inner + g % inner;
    const int combined = op == OP_LOGSUMEXP ? OP_MAX : op;
    float acc = identity(combined);
    for (long r = lid; r < R; r += WG)
        acc = combine(combined, acc, load(map, x[base + r * inner]));
    float result = group_combine(combined, part, lid, acc);
    if (op == OP_LOGSUMEXP) {
        const float shift = isinf(result) ? 0.0f : result;
        float sum = 0.0f;
        for (long r = lid; r < R; r += WG)
            sum += exp(load(map, x[base + r * inner]) - shift);
        result = log(group_combine(OP_SUM, part, lid, sum)) + shift;
    }
    if (lid == 0)
        y[g] = (finish == FINISH_SQRT ? sqrt(result) : result) * scale;
}
