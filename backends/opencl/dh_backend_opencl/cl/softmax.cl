// Softmax along the middle axis of a (outer, R, inner) array: one work-item per
// (outer, inner) row computes the row's max, the sum of exponentials and the outputs;
// with LOG defined, log-softmax: (x - max) - log(sum).
__kernel void softmax(__global float* y, __global const float* x, const long R, const long inner)
{
    const long g = get_global_id(0);
    const long o = g / inner, in = g % inner;
    const long base = o * R * inner + in;
    float m = -INFINITY;
    for (long r = 0; r < R; ++r)
        m = fmax(m, x[base + r * inner]);
    float s = 0.0f;
    for (long r = 0; r < R; ++r)
        s += exp(x[base + r * inner] - m);
#ifdef LOG
    const float log_s = log(s);
    for (long r = 0; r < R; ++r)
        y[base + r * inner] = (x[base + r * inner] - m) - log_s;
#else
    for (long r = 0; r < R; ++r)
        y[base + r * inner] = exp(x[base + r * inner] - m) / s;
#endif
}
