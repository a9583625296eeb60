"""Convolution kernels of the CPU backend.

Conv runs as im2col plus one BLAS GEMM per group (a plain GEMM for 1x1 stride-1
convolutions, a sum of weighted strided views for depthwise ones); ConvTranspose runs as
one GEMM per group followed by col2im, a scatter-add of the columns into the output.
float16 is computed in float32 and cast back; float32 and float64 use BLAS directly.
Pads and output sizes come from the op library's shared arithmetic.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dh_core.backend import Kernel
from dh_core.ir import Node, TensorType
from dh_core.ops import registry
from dh_core.ops.conv import (
    conv_transpose_pads,
    conv_transpose_size,
    effective_kernel,
    output_size,
    resolve_pads,
    spatial_attr,
    window_slices,
)

COLUMN_BYTES = 16 << 20
"""Largest im2col buffer built at once; bigger batches are processed in chunks."""

ALL = (slice(None), slice(None))
"""The batch and channel axes, whole."""


def node_attrs(node: Node) -> dict:
    """The node's attributes with the schema defaults of its op filled in."""
    return registry.get(node.op, node.domain).full_attrs(node)


def compute_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype a kernel computes in: float16 goes through float32 (BLAS has no half)."""
    return np.dtype(np.float32) if dtype == np.float16 else np.dtype(dtype)


class _Cached:
    """A value derived from one array, recomputed only when another array comes in
    (constant weights reach a kernel as the same object on every run)."""

    __slots__ = ("entry",)

    def __init__(self):
        self.entry: tuple[np.ndarray, np.ndarray] | None = None

    def get(self, array: np.ndarray, derive) -> np.ndarray:
        entry = self.entry
        if entry is None or entry[0] is not array:
            entry = self.entry = (array, derive(array))
        return entry[1]


class _Geometry:
    """Strides, dilations, pads and output sizes of a Conv for one input shape."""

    def __init__(self, attrs: dict, sizes: Sequence[int], kernel: Sequence[int]):
        n = len(kernel)
        self.kernel = list(kernel)
        self.strides = spatial_attr(attrs["strides"], n, 1)
        self.dilations = spatial_attr(attrs["dilations"], n, 1)
        self.pads = resolve_pads(attrs["auto_pad"], sizes, kernel, self.strides, self.dilations, attrs["pads"])
        self.out = [output_size(sizes[i], kernel[i], self.strides[i], self.dilations[i], self.pads[i],
                                self.pads[n + i]) for i in range(n)]
        self.extent = [max(sizes[i] + self.pads[i] + self.pads[n + i],
                           (self.out[i] - 1) * self.strides[i] + effective_kernel(kernel[i], self.dilations[i]))
                       for i in range(n)]

    def padded(self, x: np.ndarray) -> np.ndarray:
        """x zero-padded so that every window lies inside (x itself when no pad is needed)."""
        begin = self.pads[:len(self.kernel)]
        if not any(begin) and tuple(self.extent) == x.shape[2:]:
            return x
        out = np.zeros(x.shape[:2] + tuple(self.extent), x.dtype)
        out[ALL + tuple(slice(b, b + s) for b, s in zip(begin, x.shape[2:]))] = x
        return out

    def taps(self):
        """(kernel offset, slices of the padded input it reads) for every kernel tap."""
        return window_slices(self.kernel, self.strides, self.dilations, self.out)


def conv_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of Conv (1-D, 2-D and 3-D, groups, dilations, strides, pads, auto_pad)."""
    attrs = node_attrs(node)
    group = int(attrs["group"])
    weights = _Cached()

    def prepare(w: np.ndarray) -> np.ndarray:
        per_filter = int(np.prod(w.shape[1:]))
        return np.ascontiguousarray(w, dtype=compute_dtype(w.dtype)).reshape(group, w.shape[0] // group, per_filter)

    def kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        geo = _Geometry(attrs, x.shape[2:], w.shape[2:])
        ct = compute_dtype(x.dtype)
        n_batch, channels, m = x.shape[0], x.shape[1], w.shape[0]
        if min(geo.out, default=1) == 0 or n_batch == 0 or m == 0:
            y = np.zeros((n_batch, m, *geo.out), ct)
        elif group == channels and group > 1 and w.shape[1] == 1:
            y = _depthwise(x.astype(ct, copy=False), w.astype(ct, copy=False), geo)
        else:
            y = _im2col_conv(x.astype(ct, copy=False), weights.get(w, prepare), geo)
        if b is not None:
            y += b.astype(ct, copy=False).reshape((m,) + (1,) * (x.ndim - 2))
        return y.astype(x.dtype, copy=False)

    return kernel


def _im2col_conv(x: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Conv as GEMMs: w is (group, M/group, C/group * prod(kernel))."""
    group, mg, ckg = w.shape
    n_batch, channels = x.shape[:2]
    positions = int(np.prod(geo.out))
    if all(k == 1 for k in geo.kernel) and all(s == 1 for s in geo.strides) and not any(geo.pads):
        cols = x.reshape(n_batch, group, ckg, positions)
        return np.matmul(w, cols).reshape((n_batch, group * mg, *geo.out))
    xp = geo.padded(x)
    per_sample = channels * int(np.prod(geo.kernel)) * positions * x.itemsize
    chunk = max(1, COLUMN_BYTES // max(per_sample, 1))
    parts = []
    for start in range(0, n_batch, chunk):
        part = xp[start:start + chunk]
        cols = np.empty((part.shape[0], channels, *geo.kernel, *geo.out), x.dtype)
        for offset, window in geo.taps():
            cols[ALL + offset] = part[ALL + window]
        # no out=: numpy's matmul into a given buffer of a broadcast stack skips BLAS
        parts.append(np.matmul(w, cols.reshape(part.shape[0], group, ckg, positions)))
    y = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return y.reshape((n_batch, group * mg, *geo.out))


def _depthwise(x: np.ndarray, w: np.ndarray, geo: _Geometry) -> np.ndarray:
    """Depthwise Conv (one input channel per group) as a sum of weighted strided views."""
    n_batch, channels = x.shape[:2]
    mult = w.shape[0] // channels
    ones = (1,) * len(geo.kernel)
    xp = geo.padded(x)[:, :, None]
    taps = w.reshape(channels, mult, -1)
    y = np.zeros((n_batch, channels, mult, *geo.out), x.dtype)
    tmp = np.empty_like(y)
    for t, (_, window) in enumerate(geo.taps()):
        np.multiply(xp[ALL + (slice(None),) + window], taps[:, :, t].reshape((channels, mult) + ones), out=tmp)
        y += tmp
    return y.reshape((n_batch, channels * mult, *geo.out))


def conv_transpose_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of ConvTranspose (groups, dilations, strides, pads, output_padding,
    output_shape, auto_pad)."""
    attrs = node_attrs(node)
    group = int(attrs["group"])
    weights = _Cached()

    def prepare(w: np.ndarray) -> np.ndarray:
        per_channel = int(np.prod(w.shape[1:]))
        wt = np.asarray(w, dtype=compute_dtype(w.dtype)).reshape(group, w.shape[0] // group, per_channel)
        return np.ascontiguousarray(wt.transpose(0, 2, 1))

    def kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        n = x.ndim - 2
        sizes, kshape = list(x.shape[2:]), list(w.shape[2:])
        strides = spatial_attr(attrs["strides"], n, 1)
        dilations = spatial_attr(attrs["dilations"], n, 1)
        out_pad = spatial_attr(attrs["output_padding"], n, 0)
        pads = conv_transpose_pads(attrs["auto_pad"], sizes, kshape, strides, dilations, out_pad,
                                   attrs["pads"], attrs["output_shape"])
        out = [conv_transpose_size(sizes[i], kshape[i], strides[i], dilations[i], out_pad[i], pads[i],
                                   pads[n + i]) for i in range(n)]
        ct = compute_dtype(x.dtype)
        n_batch, channels = x.shape[:2]
        m = w.shape[1] * group
        cols = np.matmul(weights.get(w, prepare),
                         x.astype(ct, copy=False).reshape(n_batch, group, channels // group, int(np.prod(sizes))))
        cols = cols.reshape((n_batch, m, *kshape, *sizes))
        y = _col2im(cols, kshape, sizes, strides, dilations, pads[:n], out)
        if b is not None:
            y += b.astype(ct, copy=False).reshape((m,) + (1,) * n)
        return y.astype(x.dtype, copy=False)

    return kernel


def _col2im(cols: np.ndarray, kernel, sizes, strides, dilations, begin, out) -> np.ndarray:
    """Scatter-add cols (N, M, *kernel, *sizes) into the (N, M, *out) output that starts at
    position ``begin`` of the uncropped result (a negative begin extends it with zeros)."""
    spans = [(s - 1) * st + effective_kernel(k, d) for s, k, st, d in zip(sizes, kernel, strides, dilations)]
    shift = [max(0, -b) for b in begin]
    canvas = np.zeros(cols.shape[:2] + tuple(sh + max(span, b + o) for sh, span, b, o in
                                             zip(shift, spans, begin, out)), cols.dtype)
    for offset, window in window_slices(kernel, strides, dilations, sizes):
        target = tuple(slice(s.start + sh, s.stop + sh, s.step) for s, sh in zip(window, shift))
        canvas[ALL + target] += cols[ALL + offset]
    crop = tuple(slice(sh + b, sh + b + o) for sh, b, o in zip(shift, begin, out))
    return np.ascontiguousarray(canvas[ALL + crop])
