// Pad: each output coordinate maps to an input one shifted by the leading pad
// (negative pads crop); outside the input, MODE_CONSTANT writes the value (value[0],
// or 0 without one), MODE_EDGE repeats the border, MODE_REFLECT mirrors without the
// border, MODE_WRAP wraps around. T is an unsigned integer as wide as the element.
// meta holds [nd, out_shape[nd], in_shape[nd], lead[nd]].
__kernel void pad(__global T* y, __global const T* x, __global const T* value, const int has_value,
                  __global const long* meta, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    const int nd = (int)meta[0];
    __global const long* out = meta + 1;
    long src = 0, stride = 1, r = i;
    int outside = 0;
    for (int d = nd - 1; d >= 0; --d) {
        const long c = r % out[d];
        r /= out[d];
        const long dim = out[nd + d];
        long k = c - out[2 * nd + d];
#if defined(MODE_CONSTANT)
        if (k < 0 || k >= dim) outside = 1;
#elif defined(MODE_EDGE)
        k = k < 0 ? 0 : (k >= dim ? dim - 1 : k);
#elif defined(MODE_REFLECT)
        if (dim == 1) {
            k = 0;
        } else {
            const long p = 2 * (dim - 1);
            k %= p;
            if (k < 0) k += p;
            if (k >= dim) k = p - k;
        }
#else
        k %= dim;
        if (k < 0) k += dim;
#endif
        src += k * stride;
        stride *= dim;
    }
    y[i] = outside ? (has_value ? value[0] : (T)0) : x[src];
}
