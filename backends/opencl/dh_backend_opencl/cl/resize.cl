// One pass of Resize along one axis, one work-item per output element: x is viewed as
// (outer, in_len, inner) and y as (outer, out_len, inner). Output index j reads the n
// source indices taps[j * n + t] with weights w[j * n + t]; taps[j * n] < 0 marks an
// output outside the input (tf_crop_and_resize), which gets the fill value.
__kernel void resample(__global float* y, __global const float* x, __global const int* taps,
                       __global const float* w, const int n, const float fill, const long in_len,
                       const long out_len, const long inner)
{
    const long e = get_global_id(0);
    const long i = e % inner, j = (e / inner) % out_len, o = e / (inner * out_len);
    __global const int* t = taps + j * n;
    __global const float* wj = w + j * n;
    if (t[0] < 0) {
        y[e] = fill;
        return;
    }
    __global const float* src = x + o * in_len * inner + i;
    float acc = wj[0] * src[t[0] * inner];  // not 0 + ...: a single tap keeps the sign of zero
    for (int k = 1; k < n; ++k)
        acc += wj[k] * src[t[k] * inner];
    y[e] = acc;
}
