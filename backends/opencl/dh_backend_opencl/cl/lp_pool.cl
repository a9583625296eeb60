// LpPool (window.cl comes first), one work-item per output element: the p-norm of the
// window's input elements, pads counting as zeros. The norm is taken of the elements
// divided by the largest magnitude, so |x|^p neither overflows nor underflows.
// Global size: (P, N * C), P output positions per (image, channel) plane.

// b^e for e >= 1 by repeated squaring (PoCL's pown is a slow library call).
inline float power(float b, int e)
{
    float r = 1.0f;
    for (; e; e >>= 1, b *= b)
        if (e & 1)
            r *= b;
    return r;
}

__kernel void lp_pool(__global float* y, const int p_norm, __global const float* x, __global const int* g)
{
    const long p = get_global_id(0), plane = get_global_id(1);
    const long P = get_global_size(0);
    const int3 o = out_position(g, p);
    __global const float* xp = x + plane * (long)SIZE(0) * SIZE(1) * SIZE(2);
    float largest = 0.0f;
    int has_nan = 0;
    FOR_EACH_TAP(g, o,
        if (inside(g, i)) {
            const float v = fabs(xp[plane_offset(g, i)]);
            has_nan |= isnan(v);
            largest = fmax(largest, v);
        }
    )
    float norm = largest;
    if (has_nan) {
        norm = NAN;
    } else if (largest > 0.0f && !isinf(largest)) {
        float total = 0.0f;
        FOR_EACH_TAP(g, o,
            if (inside(g, i))
                total += power(fabs(xp[plane_offset(g, i)]) / largest, p_norm);
        )
        norm = largest * (p_norm == 1 ? total : p_norm == 2 ? sqrt(total) : pow(total, 1.0f / p_norm));
    }
    y[plane * P + p] = norm;
}
