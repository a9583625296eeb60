// Register-blocked GEMM on packed panels, for a batch of products:
//     Y[b, m, n] = alpha * sum_k A_b[m, k] B_b[k, n] + beta * C[m, n]
// pack copies each operand (read through element strides, from the offset of its
// batch) into zero-padded panels: A into panels of MR rows stored k-major ([K][MR]),
// B (as B^T) into panels of NR = 16 * NV columns stored k-major ([K][NR]).
// gemm_packed then gives each work-item one MR x NR block of Y: per k it loads NV
// float16 vectors of B and broadcasts MR values of A, so the inner loop is MR * NV
// vector multiply-adds on registers (build with -cl-mad-enable so they fuse).
// Padding makes the inner loop branch-free; only the store checks the edges. When few
// row blocks share each B panel, B is read in place instead of packed (see below).
#ifndef MR
#define MR 8
#endif
#ifndef NV
#define NV 2
#endif
#define NR (NV * 16)

__kernel void pack(__global float* dst, __global const IN_T* src, __global const long* offsets,
                   const int rows, const int K, const int panels, const int width, const int kc,
                   const long s_row, const long s_k)
{
    // Element (row, k) of the operand is src[offset + row * s_row + k * s_k]; it goes to
    // dst[batch][row / width][k][row % width]. Each work-item copies one panel over a
    // chunk of kc values of k (few, large work-items: PoCL pays per work-group). PoCL
    // calls builtins (min, vload) out of line, so the loops here use none, except
    // vload_half for float16 operands (HALF_IN, see half_io.cl), converted here.
    const int p = get_global_id(0), k0 = get_global_id(1) * kc, batch = get_global_id(2);
    const int k1 = K < k0 + kc ? K : k0 + kc;
    const int valid = rows - p * width < width ? rows - p * width : width;
    __global const IN_T* from = src + offsets[batch] + (long)p * width * s_row;
    __global float* to = dst + ((long)batch * panels + p) * K * width;
    if (s_row == 1 && valid == width) {  // rows adjacent in memory: a unit-stride copy
        for (int k = k0; k < k1; ++k)
            for (int r = 0; r < width; ++r)
                to[k * width + r] = LOAD(from, k * s_k + r);
        return;
    }
    for (int k = k0; k < k1; ++k) {
        for (int r = 0; r < valid; ++r)
            to[k * width + r] = LOAD(from, r * s_row + k * s_k);
        for (int r = valid; r < width; ++r)
            to[k * width + r] = 0.0f;
    }
}

// B is read as float16 vectors: vector v of panel jp at k is at
//     b + b_offsets[batch] + jp * b_panel + k * 16 * ldb16 + 16 * v,
// clamped to end by column b_cols. Packed panels: b_panel = K * NR, ldb16 = NV and
// b_cols = NR * panels; B in place (row-major, N and its row stride multiples of 16,
// 64-byte aligned): b_panel = NR, ldb16 = row stride / 16 and b_cols = N, so the last
// panel's loads stay inside the row (columns past N are computed but not stored).
__kernel void gemm_packed(__global float* y, __global const float* pa, __global const float* b,
                          __global const long* b_offsets, const long b_panel, const int ldb16, const int b_cols,
                          __global const float* c, const int has_c,
                          const int M, const int N, const int K, const int a_panels,
                          const long scm, const long scn, const float alpha, const float beta)
{
    const int ip = get_global_id(0), jp = get_global_id(1), batch = get_global_id(2);
    if (ip >= a_panels)
        return;  // the grid is rounded up to whole work-groups
    __global const float* ap = pa + ((long)batch * a_panels + ip) * K * MR;
    __global const float* panel = b + b_offsets[batch] + jp * b_panel;
    __global const float16* bp[NV];
    #pragma unroll
    for (int v = 0; v < NV; ++v) {
        const int last = b_cols - 16 - jp * NR;
        bp[v] = (__global const float16*)(panel + (v * 16 < last ? v * 16 : last));
    }

    float16 acc[MR][NV];
    #pragma unroll
    for (int r = 0; r < MR; ++r)
        #pragma unroll
        for (int v = 0; v < NV; ++v)
            acc[r][v] = (float16)(0.0f);

    for (int k = 0; k < K; ++k) {
        float16 bv[NV];
        #pragma unroll
        for (int v = 0; v < NV; ++v)
            bv[v] = bp[v][k * ldb16];
        #pragma unroll
        for (int r = 0; r < MR; ++r) {
            const float16 av = (float16)(ap[k * MR + r]);
            #pragma unroll
            for (int v = 0; v < NV; ++v)
                acc[r][v] += av * bv[v];
        }
    }

    __global float* out = y + (long)batch * M * N;
    #pragma unroll
    for (int r = 0; r < MR; ++r) {
        const int row = ip * MR + r;
        if (row >= M)
            break;
        #pragma unroll
        for (int v = 0; v < NV; ++v) {
            const int col0 = jp * NR + v * 16;
            const float16 scaled = alpha * acc[r][v];
            if (!has_c && col0 + 16 <= N) {
                vstore16(scaled, 0, out + (long)row * N + col0);
                continue;
            }
            float lanes[16];
            vstore16(scaled, 0, lanes);
            for (int j = 0; j < 16 && col0 + j < N; ++j) {
                const int col = col0 + j;
                out[(long)row * N + col] = has_c ? lanes[j] + beta * c[row * scm + col * scn] : lanes[j];
            }
        }
    }
}
