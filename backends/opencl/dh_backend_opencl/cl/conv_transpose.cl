// ConvTranspose kernels (window.cl comes first). g holds the geometry with SIZE the
// input's spatial sizes and OUT the output's; BEGIN pads crop the start of the output.
// Both kernels gather: one work-item per output element, so no atomics are needed.

// The input index along axis a that kernel tap k scatters onto output index o, or -1.
inline int source_index(__global const int* g, int a, int o, int k)
{
    const int t = o + BEGIN(a) - k * DILATION(a);
    if (t < 0 || t % STRIDE(a))
        return -1;
    const int i = t / STRIDE(a);
    return i < SIZE(a) ? i : -1;
}

// Runs BODY for every kernel tap that scatters an input element onto output coordinates
// o, with tap (its flat index) and at (the input element's offset in its plane) set.
#define FOR_EACH_SOURCE(g, o, BODY)                                                     \
    for (int kd = 0; kd < KERNEL(0); ++kd) {                                            \
        const int id = source_index(g, 0, o.x, kd);                                     \
        if (id < 0)                                                                     \
            continue;                                                                   \
        for (int kh = 0; kh < KERNEL(1); ++kh) {                                        \
            const int ih = source_index(g, 1, o.y, kh);                                 \
            if (ih < 0)                                                                 \
                continue;                                                               \
            for (int kw = 0; kw < KERNEL(2); ++kw) {                                    \
                const int iw = source_index(g, 2, o.z, kw);                             \
                if (iw < 0)                                                             \
                    continue;                                                           \
                const int tap = (kd * KERNEL(1) + kh) * KERNEL(2) + kw;                 \
                const long at = ((long)id * SIZE(1) + ih) * SIZE(2) + iw;               \
                BODY                                                                    \
            }                                                                           \
        }                                                                               \
    }

// Direct ConvTranspose, for groups with few input channels each. Weights are
// (C, Mg, kernel...). Global size: (P, M, N), P output positions per channel.
__kernel void conv_transpose_direct(__global float* y, __global const float* x, __global const float* w,
                                    __global const float* bias, const int has_bias, __global const int* g,
                                    const int C, const int Cg, const int Mg)
{
    const long p = get_global_id(0);
    const int m = get_global_id(1);
    const long n = get_global_id(2);
    const int M = get_global_size(1);
    const long P = get_global_size(0);
    const int3 o = out_position(g, p);
    const int c0 = (m / Mg) * Cg, mm = m % Mg;
    const int taps = KERNEL(0) * KERNEL(1) * KERNEL(2);
    const long plane = (long)SIZE(0) * SIZE(1) * SIZE(2);
    float acc = 0.0f;
    FOR_EACH_SOURCE(g, o,
        for (int c = 0; c < Cg; ++c)
            acc += x[(n * C + c0 + c) * plane + at] * w[((long)(c0 + c) * Mg + mm) * taps + tap];
    )
    if (has_bias)
        acc += bias[m];
    y[(n * M + m) * P + p] = acc;
}

// col2im of one group: col is (N, Mg * taps, Q), the products of each weight tap with
// every input position q; y[n, m0 + mm, p] sums the taps that land on p (+ bias).
// Global size: (P, Mg, N).
__kernel void col2im(__global float* y, __global const float* col, __global const float* bias,
                     const int has_bias, __global const int* g, const int M, const int m0)
{
    const long p = get_global_id(0);
    const int mm = get_global_id(1);
    const long n = get_global_id(2);
    const long P = get_global_size(0);
    const int Mg = get_global_size(1);
    const int3 o = out_position(g, p);
    const int taps = KERNEL(0) * KERNEL(1) * KERNEL(2);
    const long Q = (long)SIZE(0) * SIZE(1) * SIZE(2);
    __global const float* rows = col + (n * Mg + mm) * taps * Q;
    float acc = 0.0f;
    FOR_EACH_SOURCE(g, o, acc += rows[tap * Q + at];)
    if (has_bias)
        acc += bias[m0 + mm];
    y[(n * M + m0 + mm) * P + p] = acc;
}
