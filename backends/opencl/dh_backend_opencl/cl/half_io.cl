// How a kernel reads its input x and writes its output y: with HALF_IN x holds halves,
// read with vload_half; with HALF_OUT y holds halves, written with vstore_half_rte, the
// one rounding. Core OpenCL, no cl_khr_fp16 needed; the arithmetic stays in float.
// Without HALF_IN, x holds IN_T (float unless given). LOAD reads through any pointer
// to IN_T.
#ifdef HALF_IN
#define IN_T half
#define LOAD(p, i) vload_half(i, p)
#else
#ifndef IN_T
#define IN_T float
#endif
#define LOAD(p, i) ((p)[i])
#endif
#define LOAD_X(i) LOAD(x, i)
#ifdef HALF_OUT
#define OUT_T half
#define STORE_Y(i, v) vstore_half_rte(v, i, y)
#else
#define OUT_T float
#define STORE_Y(i, v) (y[i] = (v))
#endif
