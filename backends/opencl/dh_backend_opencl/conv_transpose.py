"""ConvTranspose in float32 over 1 to 3 spatial axes: per group, one batched GEMM of the
transposed weights with the input gives every (weight tap, input position) product, and
a col2im kernel gathers those onto each output element; groups with few input channels
each run a direct kernel instead. Both gather, one work-item per output element."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from dh_core.errors import ShapeError
from dh_core.ops.conv import ConvTranspose

from .conv import _check as conv_check  # the same inputs, dtypes and attributes
from .conv import window_source
from .gemm import batched_gemm
from .geometry import Windows
from .runtime import Runtime
from .table import OpKernel

GEMM_MIN_CHANNELS = 8
"""Input channels per group from which the GEMM and col2im path is taken."""


@dataclass(frozen=True)
class _Plan:
    """What one (input, weights) shape pair needs."""

    out_shape: tuple[int, ...]
    windows: Windows
    meta: Any


def _plan(rt: Runtime, x_shape, w_shape, group: int, attrs: dict) -> _Plan:
    n, c, *sizes = x_shape
    c_w, mg, *kernel = w_shape
    if attrs.get("kernel_shape") is not None and [int(k) for k in attrs["kernel_shape"]] != kernel:
        raise ShapeError(f"ConvTranspose kernel_shape {list(attrs['kernel_shape'])} does not match weights "
                         f"{list(w_shape)}")
    if len(w_shape) != len(x_shape) or group < 1 or c != c_w or c % group:
        raise ShapeError(f"ConvTranspose input {list(x_shape)} and weights {list(w_shape)} do not fit group {group}")
    out, (strides, dilations, pads) = ConvTranspose._geometry(list(sizes), kernel, attrs)
    windows = Windows.lifted(sizes, kernel, out, strides, dilations, pads)
    return _Plan((n, mg * group, *out), windows, rt.upload(windows.meta()))


def conv_transpose_factory(rt: Runtime, attrs: dict):
    """ConvTranspose with ONNX attributes ``attrs``; plans are cached per (x, w) shape."""
    group = int(attrs["group"])
    direct = rt.kernel(window_source("conv_transpose.cl"), "conv_transpose_direct")
    col2im = rt.kernel(window_source("conv_transpose.cl"), "col2im")
    plans: dict[tuple, _Plan] = {}

    def run(x, w, b=None):
        key = (x.shape, w.shape)
        p = plans.get(key)
        if p is None:
            p = plans[key] = _plan(rt, x.shape, w.shape, group, attrs)
        y = rt.empty(p.out_shape, np.float32)
        if y.size == 0:
            return y
        n, c = x.shape[:2]
        m = p.out_shape[1]
        cg, mg = c // group, m // group
        positions = p.windows.out_size
        has_bias = np.int32(b is not None)
        bias = b.data if b is not None and b.size else y.data
        if cg < GEMM_MIN_CHANNELS or x.size == 0:
            direct(rt.queue, (positions, m, n), None, y.data, x.data if x.size else y.data, w.data, bias,
                   has_bias, p.meta.data, np.int32(c), np.int32(cg), np.int32(mg))
            return y
        rows, inputs = mg * p.windows.taps, math.prod(x.shape[2:])
        for g in range(group):
            # A = the group's weights (Cg, Mg * taps) transposed; B = each image's input channels.
            a_offsets = np.full(n, g * cg * rows, np.int64)
            b_offsets = (np.arange(n, dtype=np.int64) * c + g * cg) * inputs
            col = batched_gemm(rt, w, x, a_offsets, b_offsets, (1, rows), (inputs, 1), rows, cg, inputs)
            col2im(rt.queue, (positions, mg, n), None, y.data, col.data, bias, has_bias, p.meta.data,
                   np.int32(m), np.int32(g * mg))
        return y

    return run


def _check(node, types) -> bool:
    """Conv's inputs and attributes, float32 only."""
    return conv_check(node, types, dtypes=("float32",))


KERNELS = {"ConvTranspose": OpKernel(_check, lambda rt, node, types, attrs: conv_transpose_factory(rt, attrs))}
