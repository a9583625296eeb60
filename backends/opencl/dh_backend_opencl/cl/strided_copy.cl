// Strided copy of elements of type T (an unsigned integer as wide as the element):
// for each coordinate c of the copied block,
//   y[dst0 + sum_d c_d * dst_d] = x[src0 + sum_d (c_d % period_d) * src_d].
// Negative source strides reverse an axis (Slice with negative steps), zero ones
// repeat it (Expand) and the period repeats a whole axis (Tile). meta holds
// [nd, src0, dst0, shape[nd], period[nd], src[nd], dst[nd]].
__kernel void strided_copy(__global T* y, __global const T* x, __global const long* meta, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    const int nd = (int)meta[0];
    __global const long* shape = meta + 3;
    long src = meta[1], dst = meta[2], r = i;
    for (int d = nd - 1; d >= 0; --d) {
        const long c = r % shape[d];
        r /= shape[d];
        src += (c % shape[nd + d]) * shape[2 * nd + d];
        dst += c * shape[3 * nd + d];
    }
    y[dst] = x[src];
}
