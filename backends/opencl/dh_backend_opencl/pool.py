"""Pooling: MaxPool (with its optional Indices output) and AveragePool over 1 to 3
spatial axes, one work-item per output element, in float32 (float16 widened to it,
see ``cast.widened``); GlobalAveragePool and GlobalMaxPool as a work-group reduction
over each (image, channel) plane, reading and writing float16 directly."""
from __future__ import annotations

import math

import numpy as np

from dh_core.ir import type_key
from dh_core.ops.conv import AUTO_PADS

from .cast import widening
from .conv import window_source
from .geometry import Windows
from .kernels import WG
from .elementwise import FLOATS
from .runtime import Runtime, half_io, program
from .table import OpKernel, rank


def _geometry_cache(rt: Runtime, attrs: dict):
    """shape -> (output shape, geometry on the device), computed once per input shape."""
    kernel = [int(k) for k in attrs["kernel_shape"]]
    ceil_mode = bool(attrs.get("ceil_mode", 0))
    found: dict[tuple, tuple] = {}

    def lookup(shape: tuple[int, ...]):
        hit = found.get(shape)
        if hit is None:
            windows = Windows.resolve(shape[2:], kernel, attrs, ceil_mode)
            out = shape[:2] + windows.out[len(windows.out) - len(kernel):]
            hit = found[shape] = (out, rt.upload(windows.meta()))
        return hit

    return lookup


def max_pool_factory(rt: Runtime, attrs: dict, with_indices: bool):
    kernel = rt.kernel(window_source("pool.cl"), "max_pool")
    geometry = _geometry_cache(rt, attrs)
    col_major = np.int32(attrs["storage_order"] == 1)

    def run(x):
        out, meta = geometry(x.shape)
        y = rt.empty(out, np.float32)
        indices = rt.empty(out, np.int64) if with_indices else None
        if y.size:
            planes, positions = out[0] * out[1], math.prod(out[2:])
            kernel(rt.queue, (positions, planes), None, y.data, indices.data if with_indices else y.data,
                   np.int32(with_indices), col_major, x.data if x.size else y.data, meta.data)
        return (y, indices) if with_indices else (y,)

    return run


def window_pool_factory(rt: Runtime, attrs: dict, file: str, name: str, setting: np.int32):
    """Kernel ``name(y, setting, x, g)`` of ``file`` (after window.cl), one work-item per
    output element of each (image, channel) plane."""
    kernel = rt.kernel(window_source(file), name)
    geometry = _geometry_cache(rt, attrs)

    def run(x):
        out, meta = geometry(x.shape)
        y = rt.empty(out, np.float32)
        if y.size:
            planes, positions = out[0] * out[1], math.prod(out[2:])
            kernel(rt.queue, (positions, planes), None, y.data, setting, x.data if x.size else y.data, meta.data)
        return y

    return run


def average_pool_factory(rt: Runtime, attrs: dict):
    return window_pool_factory(rt, attrs, "pool.cl", "average_pool", np.int32(attrs["count_include_pad"]))


def global_pool_factory(rt: Runtime, op: str, dtype: str):
    """The mean or max of each (image, channel) plane, through the reduction kernel
    (float16 accumulates in float32 and rounds once)."""
    is_max = op == "GlobalMaxPool"
    macros = ["OP_MAX"] * is_max + half_io(dtype == "float16", dtype == "float16")
    kernel = rt.kernel(program("reduce.cl"), "reduce", " ".join(f"-D{m}" for m in macros))

    def run(x):
        out = x.shape[:2] + (1,) * (x.ndim - 2)
        y = rt.empty(out, np.dtype(dtype))
        planes, size = math.prod(x.shape[:2]), math.prod(x.shape[2:])
        scale = 1.0 if is_max else (1.0 / size if size else math.nan)
        if planes:
            kernel(rt.queue, (planes * WG,), (WG,), y.data, x.data if x.size else y.data,
                   np.int64(size), np.int64(1), np.float32(scale))
        return y

    return run


def _window_check(node, types, dtypes: tuple[str, ...] = FLOATS) -> bool:
    attrs = node.attrs
    return (len(types) == 1 and type_key(types[0]) in dtypes and rank(types[0]) in (3, 4, 5)
            and len(attrs.get("kernel_shape", ())) == rank(types[0]) - 2
            and attrs.get("auto_pad", "NOTSET") in AUTO_PADS)


def _global_check(node, types) -> bool:
    return len(types) == 1 and type_key(types[0]) in FLOATS and (rank(types[0]) or 0) >= 2


def _max_pool_check(node, types) -> bool:
    return _window_check(node, types) and 1 <= len(node.outputs) <= 2


KERNELS = {
    "MaxPool": OpKernel(_max_pool_check, widening(lambda rt, node, types, attrs: max_pool_factory(
        rt, attrs, len(node.outputs) > 1 and bool(node.outputs[1])))),
    "AveragePool": OpKernel(_window_check, widening(lambda rt, node, types, attrs: average_pool_factory(rt, attrs))),
    **{op: OpKernel(_global_check, lambda rt, node, types, attrs, op=op:
                    global_pool_factory(rt, op, type_key(types[0])))
       for op in ("GlobalAveragePool", "GlobalMaxPool")},
}
