// Gathers, scatters, running sums and masks (dh_backend_opencl/indexing.py).
//
// T is the element type: an unsigned integer as wide as the element for plain copies,
// the real type (float, int, long, uchar for bool) where values are combined. I is the
// index type. An index counts from the end when negative; one out of [-A, A) is an
// error ONNX leaves to the runtime: it is clamped to the nearest end, so no kernel
// reads or writes outside its buffers.
//
// Scatters combine with COMBINE(acc, u), chosen by one of REDUCE_NONE, REDUCE_ADD,
// REDUCE_MUL, REDUCE_MAX, REDUCE_MIN; integers wrap (through U, the unsigned type as
// wide as T), bools combine logically, max and min propagate nan as numpy does.
// A build defines only what its kernel needs; the rest take harmless defaults so that
// every kernel of the file compiles.

#ifndef I
#define I long
#endif
#ifndef U
#define U T
#endif
#ifndef ONE
#define ONE 1
#endif
#if !defined(REDUCE_NONE) && !defined(REDUCE_ADD) && !defined(REDUCE_MUL) && !defined(REDUCE_MAX) && !defined(REDUCE_MIN)
#define REDUCE_NONE
#endif

inline long wrap_index(long k, const long size)
{
    if (k < 0) k += size;
    return k < 0 ? 0 : (k >= size ? size - 1 : k);
}

#if defined(REDUCE_NONE)
#define COMBINE(a, u) (u)
#elif defined(BOOL_DATA) && (defined(REDUCE_ADD) || defined(REDUCE_MAX))
#define COMBINE(a, u) ((T)((a) | (u)))
#elif defined(BOOL_DATA)
#define COMBINE(a, u) ((T)((a) & (u)))
#elif defined(REDUCE_ADD)
#define COMBINE(a, u) ((T)((U)(a) + (U)(u)))
#elif defined(REDUCE_MUL)
#define COMBINE(a, u) ((T)((U)(a) * (U)(u)))
#elif defined(REDUCE_MAX) && defined(FLOAT_DATA)
#define COMBINE(a, u) (((a) >= (u) || isnan(a)) ? (a) : (u))
#elif defined(REDUCE_MIN) && defined(FLOAT_DATA)
#define COMBINE(a, u) (((a) <= (u) || isnan(a)) ? (a) : (u))
#elif defined(REDUCE_MAX)
#define COMBINE(a, u) ((a) >= (u) ? (a) : (u))
#elif defined(REDUCE_MIN)
#define COMBINE(a, u) ((a) <= (u) ? (a) : (u))
#endif

// GatherElements and ScatterElements: the data offset of position `at` of the index
// array with its axis coordinate replaced by k, from
// meta = [nd, axis, index_shape[nd], data_strides[nd]].
inline long element_offset(long at, const long k, __global const long* meta)
{
    const int nd = (int)meta[0], axis = (int)meta[1];
    __global const long* shape = meta + 2;
    __global const long* strides = meta + 2 + nd;
    long offset = 0;
    for (int d = nd - 1; d >= 0; --d) {
        offset += (d == axis ? k : at % shape[d]) * strides[d];
        at /= shape[d];
    }
    return offset;
}

// y (shaped like idx) takes x at idx's coordinates with the axis one replaced by the index.
__kernel void gather_elements(__global T* y, __global const T* x, __global const I* idx,
                              __global const long* meta, const long axis_size, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    y[i] = x[element_offset(i, wrap_index((long)idx[i], axis_size), meta)];
}

// idx viewed as (outer, J, inner): one work-item per line (outer, inner) combines its
// updates in index order into y (already a copy of the data); lines never share an
// output element.
__kernel void scatter_elements(__global T* y, __global const I* idx, __global const T* updates,
                               __global const long* meta, const long axis_size, const long J,
                               const long inner, const long lines)
{
    const long line = get_global_id(0);
    if (line >= lines) return;
    const long first = (line / inner) * J * inner + line % inner;
    for (long j = 0; j < J; ++j) {
        const long at = first + j * inner;
        const long o = element_offset(at, wrap_index((long)idx[at], axis_size), meta);
        y[o] = COMBINE(y[o], updates[at]);
    }
}

// GatherND and ScatterND: the data offset an index row names, from
// meta = [m, dims[m], strides[m]] of the m indexed data axes.
inline long row_offset(__global const long* row, __global const long* meta)
{
    const int m = (int)meta[0];
    long offset = 0;
    for (int j = 0; j < m; ++j) offset += wrap_index(row[j], meta[1 + j]) * meta[1 + m + j];
    return offset;
}

// y viewed as (rows, inner): row r copies the inner-sized slice its index row names
// in batch r / rows_per_batch of x.
__kernel void gather_nd(__global T* y, __global const T* x, __global const long* idx,
                        __global const long* meta, const long rows_per_batch, const long batch_size,
                        const long inner, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    const long r = i / inner, s = i % inner;
    y[i] = x[(r / rows_per_batch) * batch_size + row_offset(idx + r * meta[0], meta) + s];
}

// One work-item per position in the slices, walking the index rows in order so that
// repeated rows combine (or overwrite) in the order the reference does.
__kernel void scatter_nd(__global T* y, __global const long* idx, __global const T* updates,
                         __global const long* meta, const long rows, const long inner)
{
    const long s = get_global_id(0);
    if (s >= inner) return;
    for (long r = 0; r < rows; ++r) {
        const long o = row_offset(idx + r * meta[0], meta) + s;
        y[o] = COMBINE(y[o], updates[r * inner + s]);
    }
}

// One work-item per line of an (outer, R, inner) array: the running sum along R,
// from the end when reverse, each output leaving its own element out when exclusive.
__kernel void cumsum(__global T* y, __global const T* x, const long R, const long inner,
                     const int exclusive, const int reverse, const long lines)
{
    const long line = get_global_id(0);
    if (line >= lines) return;
    const long base = (line / inner) * R * inner + line % inner;
    T acc = 0;
    for (long j = 0; j < R; ++j) {
        const long at = base + (reverse ? R - 1 - j : j) * inner;
        const T v = x[at];
        if (exclusive) {
            y[at] = acc;
            acc = (T)((U)acc + (U)v);
        } else {
            acc = (T)((U)acc + (U)v);
            y[at] = acc;
        }
    }
}

// The trailing (rows, cols) matrices of x, zero outside the band at diagonal k and
// above it (UPPER) or below it.
__kernel void trilu(__global T* y, __global const T* x, const long rows, const long cols, const long k,
                    const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    const long diff = i % cols - (i / cols) % rows;
#ifdef UPPER
    y[i] = diff >= k ? x[i] : (T)0;
#else
    y[i] = diff <= k ? x[i] : (T)0;
#endif
}

// ONE on diagonal k of a (rows, cols) matrix, zero elsewhere.
__kernel void eye(__global T* y, const long cols, const long k, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    y[i] = (i % cols - i / cols == k) ? (T)ONE : (T)0;
}

// y[i] = start + i * delta: integers wrap as the reference's int64 arithmetic cast
// down does; floats round once (fma) where the reference rounds its float64 value
// (i itself is exact as a float below 2^24 elements).
__kernel void range_values(__global T* y, const T start, const T delta, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
#ifdef FLOAT_DATA
    y[i] = fma((T)i, delta, start);
#else
    y[i] = (T)((ulong)(long)start + (ulong)i * (ulong)(long)delta);
#endif
}

// y viewed as (outer, depth, inner): values[1] where the index of (outer, inner)
// (negative ones counted from the end) is the class, values[0] elsewhere. FLOAT_INDEX
// truncates float indices toward zero; nan and those beyond the long range become
// LONG_MIN, as numpy's conversion on x86 does, and so match no class.
__kernel void one_hot(__global T* y, __global const I* idx, __global const T* values, const long depth,
                      const long inner, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    const long in = i % inner, c = (i / inner) % depth, o = i / (inner * depth);
#ifdef FLOAT_INDEX
    const float f = idx[o * inner + in];
    long k = (isnan(f) || fabs(f) >= 0x1p63f) ? LONG_MIN : (long)f;
#else
    long k = (long)idx[o * inner + in];
#endif
    if (k < 0) k += depth;
    y[i] = k == c ? values[1] : values[0];
}

// TopK over the middle axis of an (outer, R, inner) array, in the order "sorts before":
// LARGEST puts greater values first, else smaller ones; nan counts as the greatest
// value; equal values go by lower index. The order is total, so results are exact.
#if defined(FLOAT_DATA) && defined(LARGEST)
#define BETTER(u, v) ((u) > (v) || (isnan(u) && !isnan(v)))
#elif defined(FLOAT_DATA)
#define BETTER(u, v) ((u) < (v) || (!isnan(u) && isnan(v)))
#elif defined(LARGEST)
#define BETTER(u, v) ((u) > (v))
#else
#define BETTER(u, v) ((u) < (v))
#endif
#ifdef FLOAT_DATA
#define SAME(u, v) ((u) == (v) || (isnan(u) && isnan(v)))
#else
#define SAME(u, v) ((u) == (v))
#endif

#define BEFORE(u, t, v, j) (BETTER(u, v) || (SAME(u, v) && (t) < (j)))

// One work-item per element counts the elements of its line that sort before it and,
// when that rank is below K, writes itself and its index there: R steps per element.
__kernel void top_k_rank(__global T* values, __global long* indices, __global const T* x, const long R,
                         const long inner, const long K, const long n)
{
    const long i = get_global_id(0);
    if (i >= n) return;
    const long in = i % inner, j = (i / inner) % R, o = i / (inner * R);
    __global const T* line = x + o * R * inner + in;
    const T v = line[j * inner];
    long rank = 0;
    for (long t = 0; t < R; ++t) rank += BEFORE(line[t * inner], t, v, j);
    if (rank < K) {
        const long at = (o * K + rank) * inner + in;
        values[at] = v;
        indices[at] = j;
    }
}

// One work-item per line picks its K results one after another, each the first
// element in the order after the previous pick: K * R steps per line.
__kernel void top_k_select(__global T* values, __global long* indices, __global const T* x, const long R,
                           const long inner, const long K, const long lines)
{
    const long l = get_global_id(0);
    if (l >= lines) return;
    const long in = l % inner, o = l / inner;
    __global const T* line = x + o * R * inner + in;
    long prev = -1;
    for (long r = 0; r < K; ++r) {
        long best = -1;
        for (long t = 0; t < R; ++t) {
            const T u = line[t * inner];
            const int after = prev < 0 || BEFORE(line[prev * inner], prev, u, t);
            if (after && (best < 0 || BEFORE(u, t, line[best * inner], best))) best = t;
        }
        const long at = (o * K + r) * inner + in;
        values[at] = line[best * inner];
        indices[at] = best;
        prev = best;
    }
}
