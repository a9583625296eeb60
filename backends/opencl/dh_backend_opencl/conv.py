"""Conv over 1 to 3 spatial axes: im2col and the shared GEMM per group, or a direct
kernel when each group has a single input channel (depthwise). float32; float16 is
converted to float32 on the way in and rounded once on the way out."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyopencl as cl

from dh_core.errors import ShapeError
from dh_core.ir import type_key
from dh_core.ops.conv import AUTO_PADS

from .geometry import Windows
from .cast import widening
from .elementwise import FLOATS
from .gemm import gemm
from .runtime import Runtime, source
from .table import OpKernel, rank

FLOAT = np.dtype(np.float32).itemsize


def window_source(name: str) -> str:
    """A kernel file of ``cl/`` after the window geometry helpers it uses."""
    return source("window.cl") + source(name)


@dataclass
class _Plan:
    """What one input shape needs: output shape, geometry on the device, workspace."""

    out_shape: tuple[int, ...]
    windows: Windows
    meta: Any
    col: Any = None
    weights: Any = None
    runs: int = 0
    """im2col work-items: one per run of the last output axis, over the batch."""


def conv_factory(rt: Runtime, attrs: dict):
    """Conv with ONNX attributes ``attrs``; plans are cached per (x, w) shape."""
    group = int(attrs["group"])
    im2col = rt.kernel(window_source("conv.cl"), "im2col")
    place = rt.kernel(window_source("conv.cl"), "place")
    direct = rt.kernel(window_source("conv.cl"), "conv_direct")
    plans: dict[tuple, _Plan] = {}

    def plan(x, w) -> _Plan:
        key = (x.shape, w.shape)
        found = plans.get(key)
        if found is None:
            found = plans[key] = _plan(rt, x.shape, w.shape, group, attrs)
        return found

    def run(x, w, b=None):
        p = plan(x, w)
        y = rt.empty(p.out_shape, np.float32)
        if y.size == 0:
            return y
        n, c = x.shape[:2]
        m = w.shape[0]
        cg, mg = c // group, m // group
        positions = p.windows.out_size
        bias = b.data if b is not None and b.size else y.data
        xs = x.data if x.size else y.data  # a zero-size spatial axis with pads: only pads are read
        if cg == 1 and group > 1:
            direct(rt.queue, (positions, m, n), None, y.data, xs, w.data, bias, np.int32(b is not None),
                   p.meta.data, np.int32(c), np.int32(cg), np.int32(mg))
            return y
        rows, cols = cg * p.windows.taps, n * positions
        if group == 1 and n == 1:  # the GEMM writes the output itself, the bias as its C
            col = p.col
            if p.col is None:  # a pointwise conv: the input already is its column matrix
                col = x
            elif rows:
                im2col(rt.queue, (p.runs, rows), None, p.col.data, xs, p.meta.data, np.int32(c), np.int32(0))
            c_in = None if b is None else b.reshape(m, 1)
            part = gemm(rt, w, col, (rows, 1), (cols, 1), m, rows, cols, 1.0, 1.0, c_in)
            return part.reshape(p.out_shape)
        for g in range(group):
            weights = w
            if rows:
                im2col(rt.queue, (p.runs, rows), None, p.col.data, xs, p.meta.data, np.int32(c), np.int32(g * cg))
            if rows and group > 1:
                weights = p.weights
                cl.enqueue_copy(rt.queue, weights.data, w.data, byte_count=mg * rows * FLOAT,
                                src_offset=g * mg * rows * FLOAT)
            part = gemm(rt, weights, p.col, (rows, 1), (cols, 1), mg, rows, cols)
            place(rt.queue, (cols, mg), None, y.data, part.data, bias, np.int32(b is not None), p.meta.data,
                  np.int32(m), np.int32(g * mg))
        return y

    return run


def _plan(rt: Runtime, x_shape, w_shape, group: int, attrs: dict) -> _Plan:
    n, c, *sizes = x_shape
    m, cg, *kernel = w_shape
    if attrs.get("kernel_shape") is not None and [int(k) for k in attrs["kernel_shape"]] != kernel:
        raise ShapeError(f"Conv kernel_shape {list(attrs['kernel_shape'])} does not match weights {list(w_shape)}")
    if len(w_shape) != len(x_shape) or group < 1 or c != cg * group or m % group:
        raise ShapeError(f"Conv input {list(x_shape)} and weights {list(w_shape)} do not fit group {group}")
    windows = Windows.resolve(sizes, kernel, attrs)
    spatial = windows.out[len(windows.out) - len(sizes):]
    p = _Plan((n, m, *spatial), windows, rt.upload(windows.meta()))
    p.runs = n * windows.out_size // max(windows.out[-1], 1)
    pointwise = (group == 1 and n == 1 and windows.taps == 1 and windows.out_size == math.prod(sizes)
                 and all(v == 1 for v in windows.strides) and not any(windows.pads_begin + windows.pads_end))
    if not (cg == 1 and group > 1) and not pointwise:
        rows, cols = cg * windows.taps, n * windows.out_size
        p.col = rt.empty((rows, cols), np.float32)
        if group > 1:
            p.weights = rt.empty((m // group, rows), np.float32)
    return p


def _check(node, types, dtypes: tuple[str, ...] = FLOATS) -> bool:
    x, w, *b = types
    if len(b) > 1 or type_key(x) not in dtypes or any(type_key(t) != type_key(x) for t in types):
        return False
    r = rank(x)
    attrs = node.attrs
    return (r is not None and 3 <= r <= 5 and rank(w) == r and all(rank(t) == 1 for t in b)
            and attrs.get("auto_pad", "NOTSET") in AUTO_PADS and int(attrs.get("group", 1)) >= 1)


KERNELS = {"Conv": OpKernel(_check, widening(lambda rt, node, types, attrs: conv_factory(rt, attrs)))}
