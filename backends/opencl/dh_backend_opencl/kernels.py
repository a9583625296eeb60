"""Reductions, ArgMax/ArgMin, Softmax and LogSoftmax (``cl/reduce.cl``,
``cl/argreduce.cl``, ``cl/softmax.cl``), float32 and float16 (ArgMax/ArgMin also
int32/int64). float16 is read and written as half (``cl/half_io.cl``) and accumulates
in float32 across every pass, rounded once at the end.

A reduction over several axes runs one axis at a time, each pass a work-group tree
over the middle axis of an (outer, R, inner) view; the element map (abs, square)
applies on the first pass and the finish (sqrt) on the last. The ``axes`` input is
resolved at compile time when it is an initializer, else read at run time."""
from __future__ import annotations

import math

import numpy as np

from dh_core.errors import ShapeError
from dh_core.ir import type_key
from dh_core.ops.reduce import reduce_axes
from dh_core.ops.shapes import normalize_axis

from .elementwise import CTYPES, FLOATS
from .runtime import Runtime, half_io, host_values, program
from .table import OpKernel, rank

WG = 64

REDUCTIONS: dict[str, tuple[str, str, str]] = {
    # op: (combination, map of the first pass, finish of the last pass), as cl/reduce.cl macros
    "ReduceSum": ("", "", ""),
    "ReduceMean": ("", "", ""),
    "ReduceProd": ("OP_PROD", "", ""),
    "ReduceMax": ("OP_MAX", "", ""),
    "ReduceMin": ("OP_MIN", "", ""),
    "ReduceL1": ("", "MAP_ABS", ""),
    "ReduceL2": ("", "MAP_SQUARE", "FINISH_SQRT"),
    "ReduceSumSquare": ("", "MAP_SQUARE", ""),
    "ReduceLogSumExp": ("OP_LOGSUMEXP", "", ""),
}


def _split(shape: tuple[int, ...], axis: int) -> tuple[int, int, int]:
    """(outer, R, inner) of a contiguous array around ``axis``."""
    return math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:])


def reduce_factory(rt: Runtime, op: str, dtype: str, attrs: dict, axes_constant: np.ndarray | None):
    """A reduction kernel of ``dtype`` data; ``axes_constant`` is the axes initializer, if any."""
    combination, first_map, last_finish = REDUCTIONS[op]
    keepdims, noop = int(attrs["keepdims"]), int(attrs["noop_with_empty_axes"])
    elementwise_alone = bool(first_map or last_finish or combination == "OP_LOGSUMEXP")

    half = dtype == "float16"

    def launch(x, outer, r, inner, first, last, scale):
        macros = [combination, first_map if first else "", last_finish if last else "",
                  *half_io(half and first, half and last)]
        kernel = rt.kernel(program("reduce.cl"), "reduce", " ".join(f"-D{m}" for m in macros if m))
        y = rt.empty((outer * inner,), np.float16 if half and last else np.float32)
        if outer * inner:
            kernel(rt.queue, (outer * inner * WG,), (WG,), y.data, x.data if x.size else y.data,
                   np.int64(r), np.int64(inner), np.float32(scale))
        return y

    def run(x, axes=None):
        given = axes_constant if axes_constant is not None else (None if axes is None else host_values(axes))
        chosen = sorted(reduce_axes(x.ndim, given, noop))
        if not chosen:
            if not elementwise_alone:
                return x
            return launch(x, x.size, 1, 1, True, True, 1.0).reshape(x.shape)
        shape = list(x.shape)
        for k, axis in enumerate(chosen):
            outer, r, inner = _split(tuple(shape), axis)
            scale = (1.0 / r if r else math.nan) if op == "ReduceMean" else 1.0
            x = launch(x, outer, r, inner, k == 0, k == len(chosen) - 1, scale)
            shape[axis] = 1
            x = x.reshape(tuple(shape))
        if not keepdims:
            x = x.reshape(tuple(d for i, d in enumerate(shape) if i not in chosen))
        return x

    return run


def argreduce_factory(rt: Runtime, op: str, dtype: str, attrs: dict):
    if dtype in FLOATS:
        options = " ".join(["-DT=float -DFLOAT", *(f"-D{m}" for m in half_io(dtype == "float16", False))])
    else:
        options = f"-DT={CTYPES[dtype]} -DIN_T={CTYPES[dtype]}"
    kernel = rt.kernel(program("argreduce.cl"), "argreduce", options)
    is_min, last, keepdims = int(op == "ArgMin"), int(attrs["select_last_index"]), int(attrs["keepdims"])

    def run(x):
        axis = normalize_axis(attrs["axis"], x.ndim)
        outer, r, inner = _split(x.shape, axis)
        if r == 0:
            raise ShapeError(f"{op} of an empty axis {axis} of {list(x.shape)}")
        y = rt.empty((outer * inner,), np.int64)
        if outer * inner:
            kernel(rt.queue, (outer * inner * WG,), (WG,), y.data, x.data, np.int64(r), np.int64(inner),
                   np.int32(is_min), np.int32(last))
        shape = list(x.shape)
        if keepdims:
            shape[axis] = 1
        else:
            del shape[axis]
        return y.reshape(tuple(shape))

    return run


def softmax_factory(rt: Runtime, dtype: str, axis: int, log: bool = False):
    macros = ["LOG"] * log + half_io(dtype == "float16", dtype == "float16")
    kernel = rt.kernel(program("softmax.cl"), "softmax", " ".join(f"-D{m}" for m in macros))

    def run(x):
        outer, r, inner = _split(x.shape, axis % x.ndim)
        y = rt.empty(x.shape, np.dtype(dtype))
        if outer * inner and r:
            kernel(rt.queue, (outer * inner,), None, y.data, x.data, np.int64(r), np.int64(inner))
        return y

    return run


def _reduce_check(node, types):
    data, *axes = types
    return (type_key(data) in FLOATS and rank(data) is not None
            and all(type_key(t) == "int64" for t in axes))


def _argreduce_check(node, types):
    return len(types) == 1 and type_key(types[0]) in FLOATS + ("int32", "int64") and (rank(types[0]) or 0) >= 1


def _softmax_check(node, types):
    return len(types) == 1 and type_key(types[0]) in FLOATS and (rank(types[0]) or 0) >= 1


def _make_reduce(op: str):
    def make(rt, node, types, attrs, consts):
        return reduce_factory(rt, op, type_key(types[0]), attrs, consts[1] if len(consts) > 1 else None)

    return make


KERNELS = {
    "Softmax": OpKernel(_softmax_check, lambda rt, node, types, attrs:
                        softmax_factory(rt, type_key(types[0]), attrs["axis"])),
    "LogSoftmax": OpKernel(_softmax_check, lambda rt, node, types, attrs:
                           softmax_factory(rt, type_key(types[0]), attrs["axis"], True)),
    **{op: OpKernel(_argreduce_check, lambda rt, node, types, attrs, op=op:
                    argreduce_factory(rt, op, type_key(types[0]), attrs))
       for op in ("ArgMax", "ArgMin")},
    **{op: OpKernel(_reduce_check, _make_reduce(op), reads_constants=True) for op in REDUCTIONS},
}
