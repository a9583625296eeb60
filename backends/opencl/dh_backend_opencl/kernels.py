"""Tiled GEMM (MatMul, Gemm) from ``cl/gemm.cl``, float32."""
from __future__ import annotations

import numpy as np

from dh_core.ir import type_key

from .runtime import Runtime, source
from .table import OpKernel, rank

TS = 16


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


def _gemm(rt: Runtime, a, b, a_strides, b_strides, m, k, n, alpha=1.0, beta=0.0, c=None):
    y = rt.empty((m, n), np.float32)
    if m == 0 or n == 0:
        return y
    kernel = rt.kernel(source("gemm.cl"), "gemm")
    if c is not None:
        cm, cn = (1,) * (2 - c.ndim) + tuple(c.shape)
        c_strides = (cn if cm > 1 else 0, 1 if cn > 1 else 0)
    else:
        c_strides = (0, 0)
    dummy = y.data
    kernel(rt.queue, (_round_up(n, TS), _round_up(m, TS)), (TS, TS), y.data,
           a.data if a.size else dummy, b.data if b.size else dummy,
           c.data if c is not None and c.size else dummy, np.int32(c is not None),
           np.int32(m), np.int32(n), np.int32(k), *[np.int64(s) for s in (*a_strides, *b_strides, *c_strides)],
           np.float32(alpha), np.float32(beta))
    return y


def matmul_factory(rt: Runtime):
    def run(a, b):
        (m, k), n = a.shape, b.shape[1]
        return _gemm(rt, a, b, (k, 1), (n, 1), m, k, n)

    return run


def gemm_factory(rt: Runtime, attrs: dict):
    alpha, beta = float(attrs["alpha"]), float(attrs["beta"])
    trans_a, trans_b = bool(attrs["transA"]), bool(attrs["transB"])

    def run(a, b, c=None):
        m, k = a.shape[::-1] if trans_a else a.shape
        n = b.shape[0] if trans_b else b.shape[1]
        a_strides = (1, m) if trans_a else (k, 1)
        b_strides = (1, k) if trans_b else (n, 1)
        return _gemm(rt, a, b, a_strides, b_strides, m, k, n, alpha, beta, c)

    return run


def _matmul_check(node, types):
    return len(types) == 2 and all(type_key(t) == "float32" and rank(t) == 2 for t in types)


def _gemm_check(node, types):
    a, b, *c = types
    return (_matmul_check(node, [a, b]) and len(c) <= 1
            and all(type_key(t) == "float32" and rank(t) is not None and rank(t) <= 2 for t in c))


KERNELS = {
    "MatMul": OpKernel(_matmul_check, lambda rt, node, types, attrs: matmul_factory(rt)),
    "Gemm": OpKernel(_gemm_check, lambda rt, node, types, attrs: gemm_factory(rt, attrs)),
}
