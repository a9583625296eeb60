// MaxPool and AveragePool (window.cl comes first), one work-item per output element.
// Global size: (P, N * C), P output positions per (image, channel) plane.

// Max over the window's input elements (pads never win); the first NaN wins. An
// optional index output gets the flat offset of the first maximum in X, the spatial
// part row-major, or column-major when col_major is set; -1 and -inf for a window that
// sees no input.
__kernel void max_pool(__global float* y, __global long* indices, const int want_indices,
                       const int col_major, __global const float* x, __global const int* g)
{
    const long p = get_global_id(0), plane = get_global_id(1);
    const long P = get_global_size(0);
    const long plane_size = (long)SIZE(0) * SIZE(1) * SIZE(2);
    const int3 o = out_position(g, p);
    __global const float* xp = x + plane * plane_size;
    float best = -INFINITY;
    long at = -1;
    FOR_EACH_TAP(g, o,
        if (!inside(g, i))
            continue;
        const float v = xp[plane_offset(g, i)];
        if (at < 0 || v > best || (isnan(v) && !isnan(best))) {
            best = v;
            at = col_major ? i.x + (long)SIZE(0) * (i.y + (long)SIZE(1) * i.z) : plane_offset(g, i);
        }
    )
    y[plane * P + p] = best;
    if (want_indices)
        indices[plane * P + p] = at < 0 ? -1 : plane * plane_size + at;
}

// Mean over the window's input elements; with count_include_pad the declared pads
// count too (as zeros), never the extra end of a ceil_mode window. 0 / 0 gives NaN.
__kernel void average_pool(__global float* y, const int count_include_pad,
                           __global const float* x, __global const int* g)
{
    const long p = get_global_id(0), plane = get_global_id(1);
    const long P = get_global_size(0);
    const int3 o = out_position(g, p);
    __global const float* xp = x + plane * (long)SIZE(0) * SIZE(1) * SIZE(2);
    float total = 0.0f;
    int count = 0;
    FOR_EACH_TAP(g, o,
        if (inside(g, i)) {
            total += xp[plane_offset(g, i)];
            ++count;
        } else if (count_include_pad && -BEGIN(0) <= i.x && i.x < SIZE(0) + END(0)
                   && -BEGIN(1) <= i.y && i.y < SIZE(1) + END(1)
                   && -BEGIN(2) <= i.z && i.z < SIZE(2) + END(2)) {
            ++count;
        }
    )
    y[plane * P + p] = total / (float)count;
}
