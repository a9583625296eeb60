"""Resize in float32 (cl/resize.cl), every mode, coordinate transformation, nearest_mode,
keep_aspect_ratio_policy, exclude_outside and antialias: the host computes, with the op
library's own helpers, each changed axis's source indices and weights once per input shape
and index-input values; the device then runs one gathering pass per axis, as the reference
does. roi, scales and sizes are read at compile time when they are initializers."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dh_core.ir import type_key
from dh_core.ops.shape import _resize_kernel, resize_axis_taps, resize_steps

from .movement import _inputs_by_position
from .runtime import Runtime, host_values, source
from .table import OpKernel, rank


def _host_input(consts: Sequence, i: int, buf) -> np.ndarray | None:
    """Input ``i``'s values: the initializer's, else the buffer's (None when absent)."""
    const = consts[i] if i < len(consts) else None
    if const is not None:
        return np.asarray(const)
    return None if buf is None else host_values(buf)


def _axis_tables(rt: Runtime, in_len: int, out_len: int, scale: float, kernel, attrs: dict, window,
                 nearest: bool):
    """(taps, weights, taps per output) of one pass on the device."""
    taps, weights, outside = resize_axis_taps(in_len, out_len, scale, kernel,
                                              attrs["coordinate_transformation_mode"], window,
                                              attrs["exclude_outside"], nearest)
    taps = taps.astype(np.int32)
    if outside is not None:
        taps[outside, 0] = -1
    return rt.upload(taps), rt.upload(weights.astype(np.float32)), taps.shape[1]


def resize_factory(rt: Runtime, node, types, attrs, consts):
    mode = attrs["mode"]
    nearest = mode == "nearest"
    kernel = _resize_kernel(mode, attrs["nearest_mode"], 0 if nearest else attrs["antialias"],
                            attrs["cubic_coeff_a"])
    resample = rt.kernel(source("resize.cl"), "resample")
    fill = np.float32(attrs["extrapolation_value"])
    plans: dict[tuple, list] = {}

    def plan(x, roi, scales, sizes) -> list:
        values = [_host_input(consts, i, b) for i, b in ((1, roi), (2, scales), (3, sizes))]
        key = (x.shape, *(None if v is None else (v.dtype.str, v.tobytes()) for v in values))
        found = plans.get(key)
        if found is None:
            found, shape = [], list(x.shape)
            for axis, scale, size, window in resize_steps(x.shape, *values, attrs["axes"],
                                                           attrs["keep_aspect_ratio_policy"], node.name):
                in_len, shape[axis] = shape[axis], size
                tables = (_axis_tables(rt, in_len, size, scale, kernel, attrs, window, nearest)
                          if math.prod(shape) else None)
                found.append((axis, tuple(shape), tables))
            plans[key] = found
        return found

    def run(x, roi=None, scales=None, sizes=None):
        y = x
        for axis, shape, tables in plan(x, roi, scales, sizes):
            out = rt.empty(shape, np.float32)
            if out.size:
                taps, weights, n = tables
                resample(rt.queue, (out.size,), None, out.data, y.data, taps.data, weights.data, np.int32(n),
                         fill, np.int64(y.shape[axis]), np.int64(shape[axis]), np.int64(math.prod(shape[axis + 1:])))
            y = out
        return y

    return run


INDEX_TYPES = {1: ("float16", "float32", "float64"), 2: ("float32",), 3: ("int64",)}
"""The dtypes each optional input (roi, scales, sizes) may have."""


def _check(node, types) -> bool:
    by_position = _inputs_by_position(node, types)
    indices_ok = all(t is None or (type_key(t) in INDEX_TYPES[i] and rank(t) == 1)
                     for i, t in enumerate(by_position[1:4], 1))
    return (type_key(types[0]) == "float32" and rank(types[0]) is not None and len(by_position) <= 4
            and indices_ok and node.attrs.get("mode", "nearest") in ("nearest", "linear", "cubic"))


KERNELS = {"Resize": OpKernel(_check, resize_factory, reads_constants=True)}
