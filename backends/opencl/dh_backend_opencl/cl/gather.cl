// Gather along the middle axis of an (outer, A, inner) array: y viewed as
// (outer, J, inner) takes x[o, idx[j], in]; a negative index counts from the end.
// An index out of [-A, A) is an error ONNX leaves to the runtime: it is clamped to
// the nearest end, so the kernel never reads outside x.
// T is an unsigned integer as wide as the element, I the index type.
__kernel void gather(__global T* y, __global const T* x, __global const I* idx,
                     const long A, const long J, const long inner, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    const long in = i % inner, j = (i / inner) % J, o = i / (inner * J);
    long k = (long)idx[j];
    if (k < 0) k += A;
    k = k < 0 ? 0 : (k >= A ? A - 1 : k);
    y[i] = x[(o * A + k) * inner + in];
}
