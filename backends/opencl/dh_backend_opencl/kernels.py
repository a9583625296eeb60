"""Kernels from the ``cl/`` sources: work-group tree reductions (ReduceSum, ReduceMean,
ReduceMax) and Softmax, all float32. MatMul and Gemm live in :mod:`.gemm`."""
from __future__ import annotations

import math

import numpy as np

from dh_core.ir import type_key

from .runtime import Runtime, source
from .table import OpKernel, rank

WG = 64


def _split(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """(outer, R, inner) of a contiguous array around ``axis``."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def reduce_factory(rt: Runtime, op: str, attrs: dict):
    """ReduceSum/Mean/Max: one axis at a time (keeping it as size 1), then the final reshape."""
    options = "-DOP_MAX" if op == "ReduceMax" else ""
    kernel = rt.kernel(source("reduce.cl"), "reduce", options)
    keepdims, noop = bool(attrs["keepdims"]), bool(attrs["noop_with_empty_axes"])

    def run(x, axes=None):
        rank = x.ndim
        listed = [] if axes is None else [int(a) for a in axes.get().ravel()]
        if not listed and noop:
            return x
        chosen = sorted({a % rank for a in listed} if listed else range(rank))
        shape = list(x.shape)
        for axis in chosen:
            outer, r, inner = _split(tuple(shape), axis)
            y = rt.empty((outer * inner,), np.float32)
            scale = 1.0 / r if op == "ReduceMean" and r else (math.nan if op == "ReduceMean" else 1.0)
            if outer * inner:
                kernel(rt.queue, (outer * inner * WG,), (WG,), y.data, x.data if x.size else y.data,
                       np.int64(r), np.int64(inner), np.float32(scale))
            shape[axis] = 1
            x = y.reshape(tuple(shape))
        if not keepdims:
            x = x.reshape(tuple(d for i, d in enumerate(shape) if i not in chosen))
        return x

    return run


def softmax_factory(rt: Runtime, axis: int):
    kernel = rt.kernel(source("softmax.cl"), "softmax")

    def run(x):
        outer, r, inner = _split(x.shape, axis % x.ndim)
        y = rt.empty(x.shape, np.float32)
        if outer * inner and r:
            kernel(rt.queue, (outer * inner,), None, y.data, x.data, np.int64(r), np.int64(inner))
        return y

    return run


def _reduce_check(node, types):
    data, *axes = types
    return (type_key(data) == "float32" and rank(data) is not None
            and all(type_key(t) == "int64" for t in axes))


def _softmax_check(node, types):
    return len(types) == 1 and type_key(types[0]) == "float32" and (rank(types[0]) or 0) >= 1


KERNELS = {
    "Softmax": OpKernel(_softmax_check, lambda rt, node, types, attrs: softmax_factory(rt, attrs["axis"])),
    **{op: OpKernel(_reduce_check, lambda rt, node, types, attrs, op=op: reduce_factory(rt, op, attrs))
       for op in ("ReduceSum", "ReduceMean", "ReduceMax")},
}
