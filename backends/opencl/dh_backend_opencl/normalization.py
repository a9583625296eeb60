"""Normalization kernels in float32: BatchNormalization (inference), Instance and
LayerNormalization (a work-group per row), LRN and LpNormalization; float16 runs them
widened (``cast.widened``), except LpNormalization."""
from __future__ import annotations

import math

import numpy as np

from dh_core.errors import ShapeError
from dh_core.ir import type_key

from .cast import widening
from .elementwise import FLOATS
from .kernels import WG, _split
from .runtime import Runtime, source
from .table import OpKernel, rank


def _kernel(rt: Runtime, name: str):
    return rt.kernel(source("normalization.cl"), name)


def _data(array, fallback):
    """An array's buffer, or ``fallback`` for a zero-size array (which has none)."""
    return array.data if array.size else fallback.data


def _per_channel(op: str, x, *params) -> None:
    channels = x.shape[1]
    for p in params:
        if p.shape != (channels,):
            raise ShapeError(f"{op} parameters of shape {list(p.shape)} do not fit {channels} channels")


def batch_norm_factory(rt: Runtime, attrs: dict):
    kernel = _kernel(rt, "batch_norm")
    epsilon = np.float32(attrs["epsilon"])

    def run(x, scale, b, mean, var):
        _per_channel("BatchNormalization", x, scale, b, mean, var)
        y = rt.empty(x.shape, np.float32)
        if y.size:
            kernel(rt.queue, (y.size,), None, y.data, x.data, scale.data, b.data, mean.data, var.data,
                   epsilon, np.int64(x.shape[1]), np.int64(math.prod(x.shape[2:])))
        return (y,)

    return run


def _standardize(rt: Runtime, x, scale, b, rows: int, epsilon: float, per_row: bool, stats_shape=None):
    """y (and, with ``stats_shape``, the rows' mean and inverse stddev) of x as ``rows`` rows."""
    kernel = _kernel(rt, "standardize")
    y = rt.empty(x.shape, np.float32)
    stats = [rt.empty(stats_shape, np.float32) for _ in range(2)] if stats_shape is not None else []
    if rows:
        spare = y if y.size else rt.empty((1,), np.float32)  # stands in for buffers of zero-size arrays
        mean, inv = (_data(s, spare) for s in stats) if stats else (spare.data, spare.data)
        kernel(rt.queue, (rows * WG,), (WG,), spare.data, mean, inv, np.int32(bool(stats)),
               _data(x, spare), _data(scale, spare), spare.data if b is None else _data(b, spare),
               np.int32(b is not None), np.int64(x.size // rows), np.float32(epsilon), np.int32(per_row),
               np.int64(max(scale.size, 1)))
    return y, stats


def instance_norm_factory(rt: Runtime, attrs: dict):
    def run(x, scale, b):
        _per_channel("InstanceNormalization", x, scale, b)
        y, _ = _standardize(rt, x, scale, b, x.shape[0] * x.shape[1], attrs["epsilon"], True)
        return y

    return run


def layer_norm_factory(rt: Runtime, attrs: dict, with_stats: bool):
    def run(x, scale, b=None):
        axis = attrs["axis"] % x.ndim
        normalized = x.shape[axis:]
        for p in (scale, b):
            if p is not None and not _trailing_broadcast(p.shape, normalized):
                raise ShapeError(f"LayerNormalization parameter of shape {list(p.shape)} does not broadcast "
                                 f"to the normalized shape {list(normalized)}")
        if b is not None and b.size != scale.size:
            raise ShapeError("LayerNormalization Scale and B differ in size")
        stats_shape = x.shape[:axis] + (1,) * (x.ndim - axis) if with_stats else None
        y, stats = _standardize(rt, x, scale, b, math.prod(x.shape[:axis]), attrs["epsilon"], False, stats_shape)
        return (y, *stats)

    return run


def _trailing_broadcast(shape: tuple, normalized: tuple) -> bool:
    """Whether a parameter of ``shape`` repeats along the leading normalized axes only:
    without its leading 1s, it is a suffix of ``normalized``."""
    if len(shape) > len(normalized):
        return False
    dims = list(shape)
    while dims and dims[0] == 1:
        dims.pop(0)
    return not dims or tuple(dims) == tuple(normalized[len(normalized) - len(dims):])


def lrn_factory(rt: Runtime, attrs: dict):
    kernel = _kernel(rt, "lrn")
    size = int(attrs["size"])
    alpha_over_size = np.float32(attrs["alpha"]) / np.float32(size)

    def run(x):
        y = rt.empty(x.shape, np.float32)
        if y.size:
            kernel(rt.queue, (y.size,), None, y.data, x.data, np.int64(x.shape[1]),
                   np.int64(math.prod(x.shape[2:])), np.int32((size - 1) // 2), np.int32(size // 2),
                   alpha_over_size, np.float32(attrs["bias"]), np.float32(attrs["beta"]))
        return y

    return run


def lp_norm_factory(rt: Runtime, attrs: dict):
    kernel = _kernel(rt, "lp_norm")

    def run(x):
        outer, r, inner = _split(x.shape, attrs["axis"] % x.ndim)
        y = rt.empty(x.shape, np.float32)
        if y.size:
            kernel(rt.queue, (outer * inner,), None, y.data, x.data, np.int64(r), np.int64(inner),
                   np.int32(attrs["p"]))
        return y

    return run


def _floats(types) -> bool:
    """All float32 or all float16 (which the float32 kernels run widened)."""
    return type_key(types[0]) in FLOATS and all(type_key(t) == type_key(types[0]) for t in types)


def _outputs(node) -> int:
    return sum(1 for o in node.outputs if o)


def _batch_norm_check(node, types) -> bool:
    return (len(types) == 5 and _floats(types) and (rank(types[0]) or 0) >= 2
            and all(rank(t) == 1 for t in types[1:])
            and node.attrs.get("training_mode", 0) == 0 and _outputs(node) == 1 and node.outputs[0] != "")


def _instance_norm_check(node, types) -> bool:
    return len(types) == 3 and _floats(types) and (rank(types[0]) or 0) >= 3 and all(rank(t) == 1 for t in types[1:])


def _layer_norm_check(node, types) -> bool:
    x, *params = types
    if not (_floats(types) and 1 <= len(params) <= 2 and node.attrs.get("stash_type", 1) == 1):
        return False
    if type_key(x) == "float16" and _outputs(node) > 1:  # the statistics stay float32: not widened
        return False
    r = rank(x)
    axis = node.attrs.get("axis", -1)
    if r is None or not -r <= axis < r:
        return False
    normalized = x.shape[axis % r:]
    known = [t.shape for t in params if t.shape is not None and all(isinstance(d, int) for d in t.shape)]
    return (len(known) == len(params) and all(isinstance(d, int) for d in normalized)
            and all(_trailing_broadcast(tuple(s), tuple(normalized)) for s in known)
            and len({math.prod(s) for s in known}) == 1)


def _lrn_check(node, types) -> bool:
    return len(types) == 1 and _floats(types) and (rank(types[0]) or 0) >= 2


def _lp_norm_check(node, types) -> bool:
    """float32 only: for float16 the reference squares in float16, so a subnormal's norm
    underflows to 0 (output 0) where float32 keeps it (output 1)."""
    r = rank(types[0]) if len(types) == 1 else None
    return (r is not None and r >= 1 and type_key(types[0]) == "float32" and node.attrs.get("p", 2) in (1, 2)
            and -r <= node.attrs.get("axis", -1) < r)


KERNELS = {
    "BatchNormalization": OpKernel(_batch_norm_check, widening(lambda rt, node, types, attrs:
                                                               batch_norm_factory(rt, attrs))),
    "InstanceNormalization": OpKernel(_instance_norm_check, widening(lambda rt, node, types, attrs:
                                                                     instance_norm_factory(rt, attrs))),
    "LayerNormalization": OpKernel(_layer_norm_check, widening(lambda rt, node, types, attrs: layer_norm_factory(
        rt, attrs, len(node.outputs) > 1))),
    "LRN": OpKernel(_lrn_check, widening(lambda rt, node, types, attrs: lrn_factory(rt, attrs))),
    "LpNormalization": OpKernel(_lp_norm_check, lambda rt, node, types, attrs: lp_norm_factory(rt, attrs)),
}
