// Normalization kernels, float32.
#define WG 64

// BatchNormalization in inference mode, one work-item per element of (N, C, inner).
__kernel void batch_norm(__global float* y, __global const float* x, __global const float* scale,
                         __global const float* b, __global const float* mean, __global const float* var,
                         const float epsilon, const long C, const long inner)
{
    const long i = get_global_id(0);
    const long c = (i / inner) % C;
    y[i] = (x[i] - mean[c]) / sqrt(var[c] + epsilon) * scale[c] + b[c];
}

// The sum of every item's v over the work-group, returned to each item.
inline float group_sum(__local float* part, float v)
{
    const int lid = get_local_id(0);
    part[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = WG / 2; s > 0; s >>= 1) {
        if (lid < s)
            part[lid] += part[lid + s];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float total = part[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

// Standardizes each row of R contiguous elements, one work-group per row (two passes:
// mean, then the mean squared deviation): y = (x - mean) / sqrt(var + epsilon) * scale + b.
// The parameters are per row (row % params: InstanceNormalization's channel) when per_row,
// else per element (r % params: LayerNormalization's trailing-axes broadcast). With
// want_stats, mean and 1 / sqrt(var + epsilon) of each row go to mean_out and inv_out.
__kernel void standardize(__global float* y, __global float* mean_out, __global float* inv_out,
                          const int want_stats, __global const float* x, __global const float* scale,
                          __global const float* b, const int has_b, const long R, const float epsilon,
                          const int per_row, const long params)
{
    __local float part[WG];
    const long row = get_group_id(0);
    const int lid = get_local_id(0);
    __global const float* xr = x + row * R;
    float s = 0.0f;
    for (long r = lid; r < R; r += WG)
        s += xr[r];
    const float mean = group_sum(part, s) / (float)R;
    float q = 0.0f;
    for (long r = lid; r < R; r += WG) {
        const float d = xr[r] - mean;
        q += d * d;
    }
    const float std = sqrt(group_sum(part, q) / (float)R + epsilon);
    for (long r = lid; r < R; r += WG) {
        const long p = per_row ? row % params : r % params;
        float v = (xr[r] - mean) / std * scale[p];
        if (has_b)
            v += b[p];
        y[row * R + r] = v;
    }
    if (want_stats && lid == 0) {
        mean_out[row] = mean;
        inv_out[row] = 1.0f / std;
    }
}

// LRN across the channels of (N, C, inner), one work-item per element: x over
// (bias + alpha / size * the sum of squares in the channel window) ** beta.
__kernel void lrn(__global float* y, __global const float* x, const long C, const long inner,
                  const int before, const int after, const float alpha_over_size, const float bias,
                  const float beta)
{
    const long i = get_global_id(0);
    const long c = (i / inner) % C;
    const long base = i - c * inner;
    float s = 0.0f;
    for (long k = max(c - before, 0L); k <= min(c + after, C - 1); ++k) {
        const float v = x[base + k * inner];
        s += v * v;
    }
    y[i] = x[i] / pow(bias + alpha_over_size * s, beta);
}

// LpNormalization (p 1 or 2) along the middle axis of (outer, R, inner), one work-item
// per (outer, inner) row; 0 where the norm is 0.
__kernel void lp_norm(__global float* y, __global const float* x, const long R, const long inner, const int p)
{
    const long g = get_global_id(0);
    const long base = (g / inner) * R * inner + g % inner;
    float s = 0.0f;
    for (long r = 0; r < R; ++r) {
        const float v = x[base + r * inner];
        s += p == 1 ? fabs(v) : v * v;
    }
    const float norm = p == 1 ? s : sqrt(s);
    for (long r = 0; r < R; ++r)
        y[base + r * inner] = norm == 0.0f ? 0.0f : x[base + r * inner] / norm;
}
