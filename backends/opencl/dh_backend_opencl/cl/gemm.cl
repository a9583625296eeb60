// Tiled GEMM: Y[m, n] = alpha * sum_k A[m, k] B[k, n] + beta * C[m, n].
// A, B and C are read through element strides, so transposes and a broadcast C
// (stride 0) need no copy. Each work-group computes a TS x TS tile of Y, staging
// TS x TS tiles of A and B in local memory.
#define TS 16

__kernel void gemm(__global float* y, __global const float* a, __global const float* b,
                   __global const float* c, const int has_c,
                   const int M, const int N, const int K,
                   const long sam, const long sak, const long sbk, const long sbn,
                   const long scm, const long scn, const float alpha, const float beta)
{
    __local float ta[TS][TS];
    __local float tb[TS][TS];
    const int lr = get_local_id(1), lc = get_local_id(0);
    const int row = get_group_id(1) * TS + lr, col = get_group_id(0) * TS + lc;
    float acc = 0.0f;
    for (int k0 = 0; k0 < K; k0 += TS) {
        const int ka = k0 + lc, kb = k0 + lr;
        ta[lr][lc] = (row < M && ka < K) ? a[row * sam + ka * sak] : 0.0f;
        tb[lr][lc] = (kb < K && col < N) ? b[kb * sbk + col * sbn] : 0.0f;
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int k = 0; k < TS; ++k)
            acc += ta[lr][k] * tb[k][lc];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (row < M && col < N) {
        float v = alpha * acc;
        if (has_c)
            v += beta * c[row * scm + col * scn];
        y[row * N + col] = v;
    }
}
