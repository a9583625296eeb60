"""GEMM on the device (cl/gemm.cl): Gemm, batched MatMul with ONNX's broadcasting, and
:func:`gemm`, the 2-D entry point other kernels (Conv by im2col) build on. The core is
float32; Gemm also takes float16, whose operands are converted to float32 as they are
packed (and C before use), and whose float32 result is rounded to float16 once.

Operands are packed into zero-padded panels (B is read in place when A has few rows and
B's rows suit aligned vector loads), then each work-item computes an MR x NR block of the
output in vector registers; the packing reads through element strides and per-batch
offsets, so transposes, broadcast batches and a broadcast C need no copies."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dh_core.ir import type_key
from dh_core.ops.linalg import matmul_shape

from .cast import converter
from .elementwise import FLOATS
from .runtime import Runtime, half_io, program
from .table import OpKernel, rank

MR = 8
"""Rows of A per work-item block."""
NV = 2
"""float16 vectors of B per work-item block: NR = 16 * NV columns."""
NR = 16 * NV
GROUP = 4
"""Work-items per work-group along M: neighbouring row blocks share a packed B panel."""
IN_PLACE_B_ROWS = 128
"""Up to this many rows of A, a row-major B with aligned rows is read in place: packing
it costs a pass over B that too few row blocks repay."""
PACK_CHUNK = 4096
"""Elements one work-item of the pack kernel copies (a panel's rows over a range of k):
PoCL runs each work-group as a task with a fixed cost, so the work-items are large."""
OPTIONS = f"-DMR={MR} -DNV={NV} -cl-mad-enable"


def _blocks(n: int, step: int) -> int:
    return -(-n // step)


def batched_gemm(rt: Runtime, a, b, a_offsets: np.ndarray, b_offsets: np.ndarray, a_strides, b_strides,
                 m: int, k: int, n: int, alpha: float = 1.0, beta: float = 0.0, c=None):
    """``Y[i] = alpha * A_i @ B_i + beta * C`` for i over the batch, shape (batch, m, n).

    ``A_i`` is the (m, k) matrix at element offset ``a_offsets[i]`` of ``a`` read with
    ``a_strides`` (row, column) in elements; likewise ``B_i`` (k, n). ``C`` (rank <= 2)
    broadcasts to (m, n) and is the same for every batch. float16 A, B and C are read as
    float32; the result is float32."""
    batch = len(a_offsets)
    y = rt.empty((batch, m, n), np.float32)
    if batch == 0 or m == 0 or n == 0:
        return y
    a_panels, b_panels = _blocks(m, MR), _blocks(n, NR)
    pa = rt.empty((max(1, batch * a_panels * MR * k),), np.float32)
    if k:
        _pack(rt, pa, a, a_offsets, m, k, a_panels, MR, a_strides)
    if k and b.dtype == np.float32 and _b_in_place(rt, b_offsets, b_strides, m, n):
        b_data, b_table, b_panel, ldb16, b_cols = b.data, b_offsets, NR, b_strides[0] // 16, n
    else:
        pb = rt.empty((max(1, batch * b_panels * NR * k),), np.float32)
        if k:
            _pack(rt, pb, b, b_offsets, n, k, b_panels, NR, b_strides[::-1])
        b_table = np.arange(batch, dtype=np.int64) * (b_panels * NR * k)
        b_data, b_panel, ldb16, b_cols = pb.data, NR * k, NV, NR * b_panels
    if c is not None and c.dtype == np.float16:
        c = converter(rt, "float16", "float32")(c)
    c_strides = (0, 0) if c is None else _broadcast_strides(c.shape, element_strides(c), 2)
    rt.kernel(program("gemm.cl"), "gemm_packed", OPTIONS)(
        rt.queue, (_blocks(a_panels, GROUP) * GROUP, b_panels, batch), (GROUP, 1, 1),
        y.data, pa.data, b_data, rt.constant(b_table).data, np.int64(b_panel), np.int32(ldb16), np.int32(b_cols),
        c.data if c is not None and c.size else y.data, np.int32(c is not None),
        np.int32(m), np.int32(n), np.int32(k), np.int32(a_panels),
        *[np.int64(s) for s in c_strides], np.float32(alpha), np.float32(beta))
    return y


def _b_in_place(rt: Runtime, offsets: np.ndarray, strides, m: int, n: int) -> bool:
    """Whether B can be read in place as float16 vectors: small M, unit column stride, and
    N, the row stride and every batch offset multiples of 16 floats (64-byte aligned)."""
    row_stride, col_stride = strides
    return (m <= IN_PLACE_B_ROWS and col_stride == 1 and n % 16 == 0 and row_stride % 16 == 0
            and not (offsets % 16).any() and rt.device.mem_base_addr_align >= 512)


def _pack(rt: Runtime, dst, src, offsets: np.ndarray, rows: int, k: int, panels: int, width: int, strides):
    """Copy a batch of (rows, k) operands read with ``strides`` (row, k) into panels of ``width`` rows."""
    kc = max(1, PACK_CHUNK // width)
    options = " ".join([OPTIONS, *(f"-D{m}" for m in half_io(src.dtype == np.float16, False))])
    rt.kernel(program("gemm.cl"), "pack", options)(
        rt.queue, (panels, _blocks(k, kc), len(offsets)), (1, 1, 1), dst.data, src.data, rt.constant(offsets).data,
        np.int32(rows), np.int32(k), np.int32(panels), np.int32(width), np.int32(kc),
        *[np.int64(s) for s in strides])


_ORIGIN = np.zeros(1, np.int64)


def gemm(rt: Runtime, a, b, a_strides, b_strides, m, k, n, alpha=1.0, beta=0.0, c=None):
    """``alpha * A @ B + beta * C`` as an (m, n) device array: A (m, k) and B (k, n) read
    from the start of ``a`` and ``b`` through element strides, C (rank <= 2) broadcast."""
    y = batched_gemm(rt, a, b, _ORIGIN, _ORIGIN, a_strides, b_strides, m, k, n, alpha, beta, c)
    return y.reshape((m, n))


def element_strides(array) -> tuple[int, ...]:
    """The strides of a device array in elements (views such as transposes have their own)."""
    return tuple(s // array.dtype.itemsize for s in array.strides)


def _broadcast_strides(shape, strides, rank: int) -> tuple[int, ...]:
    """``strides`` right-aligned to ``rank`` dims, 0 along dims of size 1 (broadcast)."""
    pad = rank - len(shape)
    return (0,) * pad + tuple(0 if d == 1 else s for d, s in zip(shape, strides))


@dataclass(frozen=True)
class MatMulPlan:
    """How one pair of operand layouts runs as a batched GEMM."""

    m: int
    k: int
    n: int
    a_offsets: np.ndarray
    b_offsets: np.ndarray
    a_strides: tuple[int, int]
    b_strides: tuple[int, int]
    out_shape: tuple[int, ...]

    @classmethod
    def of(cls, a_shape: tuple[int, ...], b_shape: tuple[int, ...],
           a_strides: tuple[int, ...], b_strides: tuple[int, ...]) -> MatMulPlan:
        """ONNX (numpy) MatMul on operands with element strides: 1-D operands promoted,
        batch dims broadcast. When B has no batch dims and A's batch and row dims form one
        evenly strided axis, A's batch folds into its rows (one larger GEMM)."""
        out_shape = tuple(matmul_shape(a_shape, b_shape))
        if len(a_shape) == 1:
            a_shape, a_strides = (1,) + a_shape, (0,) + a_strides
        if len(b_shape) == 1:
            b_shape, b_strides = b_shape + (1,), b_strides + (0,)
        (m, k), n = a_shape[-2:], b_shape[-1]
        if len(b_shape) == 2 and _rows_fold(a_shape, a_strides):
            return cls(math.prod(a_shape[:-1]), k, n, _ORIGIN, _ORIGIN, a_strides[-2:], b_strides, out_shape)
        batch = np.broadcast_shapes(a_shape[:-2], b_shape[:-2])
        return cls(m, k, n, _batch_offsets(a_shape, a_strides, batch), _batch_offsets(b_shape, b_strides, batch),
                   a_strides[-2:], b_strides[-2:], out_shape)


def _rows_fold(shape: tuple[int, ...], strides: tuple[int, ...]) -> bool:
    """Whether dims ``shape[:-1]`` walk one axis with the row stride ``strides[-2]``."""
    expected = strides[-2]
    for size, stride in zip(shape[-2::-1], strides[-2::-1]):
        if size != 1 and stride != expected:
            return False
        expected = stride * size if size != 1 else expected
    return True


def _batch_offsets(shape: tuple[int, ...], strides: tuple[int, ...], batch: tuple[int, ...]) -> np.ndarray:
    """Element offset of the matrix of an operand for every index of the broadcast ``batch``."""
    used = np.array(_broadcast_strides(shape[:-2], strides[:-2], len(batch)), np.int64)
    index = np.indices(batch, dtype=np.int64).reshape(len(batch), -1)
    return np.ascontiguousarray(used @ index)


def matmul_factory(rt: Runtime):
    plans: dict[tuple, MatMulPlan] = {}

    def run(a, b):
        key = (a.shape, b.shape, element_strides(a), element_strides(b))
        plan = plans.get(key)
        if plan is None:
            plan = plans[key] = MatMulPlan.of(*key)
        y = batched_gemm(rt, a, b, plan.a_offsets, plan.b_offsets, plan.a_strides, plan.b_strides,
                         plan.m, plan.k, plan.n)
        return y.reshape(plan.out_shape)

    return run


def gemm_factory(rt: Runtime, attrs: dict, dtype: str = "float32"):
    alpha, beta = float(attrs["alpha"]), float(attrs["beta"])
    out = converter(rt, "float32", "float16") if dtype == "float16" else (lambda y: y)
    trans_a, trans_b = bool(attrs["transA"]), bool(attrs["transB"])

    def run(a, b, c=None):
        m, k = a.shape[::-1] if trans_a else a.shape
        n = b.shape[0] if trans_b else b.shape[1]
        a_strides, b_strides = element_strides(a), element_strides(b)
        return out(gemm(rt, a, b, a_strides[::-1] if trans_a else a_strides,
                        b_strides[::-1] if trans_b else b_strides, m, k, n, alpha, beta, c))

    return run


def _floats(types, ranks, dtype: str) -> bool:
    return all(type_key(t) == dtype and rank(t) in ranks for t in types)


def _matmul_check(node, types):
    """float32 only: with float16 MatMul, ONNX's float16 attention case runs wholly here
    and its Softmax, rounded once, misses the case's expected output (rounded after each
    step) by two units in the last place, over the case's tolerance."""
    return len(types) == 2 and _floats(types, range(1, 64), "float32")


def _gemm_check(node, types):
    a, b, *c = types
    dtype = type_key(a)
    return dtype in FLOATS and _floats([a, b], (2,), dtype) and len(c) <= 1 and _floats(c, (0, 1, 2), dtype)


KERNELS = {
    "MatMul": OpKernel(_matmul_check, lambda rt, node, types, attrs: matmul_factory(rt)),
    "Gemm": OpKernel(_gemm_check, lambda rt, node, types, attrs: gemm_factory(rt, attrs, type_key(types[0]))),
}
