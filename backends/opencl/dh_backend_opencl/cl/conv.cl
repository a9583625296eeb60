// Conv kernels (window.cl comes first). Tensors are (N, C, D, H, W) with the spatial
// sizes in g; P is the number of output positions per channel.

// im2col of the Cg channels starting at c0: col[(c * taps + tap), n * P + p] is the
// input element that tap reads for output position p of image n, 0 in the pads. Each
// work-item fills one run of the last output axis, so the index arithmetic is done once
// per run and the writes are contiguous. Global size: (N * OUT(0) * OUT(1), Cg * taps).
__kernel void im2col(__global float* col, __global const float* x, __global const int* g,
                     const int C, const int c0)
{
    const long j = get_global_id(0), r = get_global_id(1);
    const int ow_count = OUT(2);
    const long cols = get_global_size(0) * ow_count;
    const long P = (long)OUT(0) * OUT(1) * ow_count;
    const long n = j / ((long)OUT(0) * OUT(1));
    const long run = j % ((long)OUT(0) * OUT(1));
    const int od = (int)(run / OUT(1)), oh = (int)(run % OUT(1));
    long t = r;
    const int kw = (int)(t % KERNEL(2)); t /= KERNEL(2);
    const int kh = (int)(t % KERNEL(1)); t /= KERNEL(1);
    const int kd = (int)(t % KERNEL(0));
    const int c = (int)(t / KERNEL(0));
    const int id = od * STRIDE(0) - BEGIN(0) + kd * DILATION(0);
    const int ih = oh * STRIDE(1) - BEGIN(1) + kh * DILATION(1);
    __global float* out = col + r * cols + n * P + run * ow_count;
    if (id < 0 || id >= SIZE(0) || ih < 0 || ih >= SIZE(1)) {
        for (int ow = 0; ow < ow_count; ++ow)
            out[ow] = 0.0f;
        return;
    }
    const int width = SIZE(2), stride = STRIDE(2);
    const int iw0 = kw * DILATION(2) - BEGIN(2);
    __global const float* row = x + ((n * C + c0 + c) * SIZE(0) + id) * (long)SIZE(1) * width
                                  + (long)ih * width;
    for (int ow = 0; ow < ow_count; ++ow) {
        const int iw = ow * stride + iw0;
        out[ow] = (iw >= 0 && iw < width) ? row[iw] : 0.0f;
    }
}

// y[n, m0 + m, p] = part[m, n * P + p] (+ bias[m0 + m]): one group's GEMM result into
// the output. Global size: (N * P, Mg).
__kernel void place(__global float* y, __global const float* part, __global const float* bias,
                    const int has_bias, __global const int* g, const int M, const int m0)
{
    const long j = get_global_id(0);
    const int m = get_global_id(1);
    const long cols = get_global_size(0);
    const long P = (long)OUT(0) * OUT(1) * OUT(2);
    float v = part[m * cols + j];
    if (has_bias)
        v += bias[m0 + m];
    y[((j / P) * M + m0 + m) * P + j % P] = v;
}

// Direct grouped convolution, one work-item per output element: for groups with few
// input channels each (depthwise), where a GEMM per group would be tiny.
// Global size: (P, M, N).
__kernel void conv_direct(__global float* y, __global const float* x, __global const float* w,
                          __global const float* bias, const int has_bias, __global const int* g,
                          const int C, const int Cg, const int Mg)
{
    const long p = get_global_id(0);
    const int m = get_global_id(1);
    const long n = get_global_id(2);
    const int M = get_global_size(1);
    const long P = get_global_size(0);
    const int3 o = out_position(g, p);
    const int c0 = (m / Mg) * Cg;
    const long plane = SIZE(0) * SIZE(1) * SIZE(2);
    __global const float* wm = w + (long)m * Cg * KERNEL(0) * KERNEL(1) * KERNEL(2);
    float acc = 0.0f;
    for (int c = 0; c < Cg; ++c) {
        __global const float* xc = x + (n * C + c0 + c) * plane;
        FOR_EACH_TAP(g, o,
            const float wv = *wm++;
            if (inside(g, i))
                acc += wv * xc[plane_offset(g, i)];
        )
    }
    if (has_bias)
        acc += bias[m];
    y[(n * M + m) * P + p] = acc;
}
