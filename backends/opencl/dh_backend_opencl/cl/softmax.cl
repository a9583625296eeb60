// Softmax along the middle axis of a (outer, R, inner) array: one work-item per
// (outer, inner) row computes the row's max, the sum of exponentials and the outputs;
// with LOG defined, log-softmax: (x - max) - log(sum). float16 data (HALF_IN and
// HALF_OUT, see half_io.cl) is computed in float and each output rounded once.
__kernel void softmax(__global OUT_T* y, __global const IN_T* x, const long R, const long inner)
{
    const long g = get_global_id(0);
    const long o = g / inner, in = g % inner;
    const long base = o * R * inner + in;
    float m = -INFINITY;
    for (long r = 0; r < R; ++r)
        m = fmax(m, LOAD_X(base + r * inner));
    float s = 0.0f;
    for (long r = 0; r < R; ++r)
        s += exp(LOAD_X(base + r * inner) - m);
#ifdef LOG
    const float log_s = log(s);
    for (long r = 0; r < R; ++r)
        STORE_Y(base + r * inner, (LOAD_X(base + r * inner) - m) - log_s);
#else
    for (long r = 0; r < R; ++r)
        STORE_Y(base + r * inner, exp(LOAD_X(base + r * inner) - m) / s);
#endif
}
