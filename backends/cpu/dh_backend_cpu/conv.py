"""Convolution kernels of the CPU backend.

Conv runs as im2col plus one BLAS GEMM per group (a plain GEMM for 1x1 stride-1
convolutions, a sum of weighted strided views for depthwise ones); ConvTranspose runs as
one GEMM per group followed by col2im, a scatter-add of the columns into the output.
float16 is computed in float32 and cast back; float32 and float64 use BLAS directly.
Pads and output sizes come from the op library's shared arithmetic.
"""
from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
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
from numpy.lib.stride_tricks import as_strided

from dh_core.backend import Kernel
from dh_core.ir import Node, TensorType

COLUMN_BYTES = 4 << 20
"""Largest im2col buffer built at once; more output positions are processed in chunks."""

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

    @property
    def taps_count(self) -> int:
        return int(np.prod(self.kernel))

    def is_pointwise(self) -> bool:
        """A 1x1 kernel, stride 1, no pads: the Conv is a plain matrix product."""
        return self.taps_count == 1 and all(s == 1 for s in self.strides) and not any(self.pads)


def conv_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of Conv (1-D, 2-D and 3-D, groups, dilations, strides, pads, auto_pad)."""
    attrs = node_attrs(node)
    group = int(attrs["group"])
    as_columns, per_tap, depthwise = _Cached(), _Cached(), _Cached()

    def columns_layout(w: np.ndarray) -> np.ndarray:
        """(group, M/group, C/group * taps): one GEMM over the columns of every tap."""
        return _compute_copy(w).reshape(group, w.shape[0] // group, -1)

    def tap_layout(w: np.ndarray) -> np.ndarray:
        """(group, taps, M/group, C/group): one GEMM per tap, summed."""
        wg = _compute_copy(w).reshape(group, w.shape[0] // group, w.shape[1], -1)
        return np.ascontiguousarray(wg.transpose(0, 3, 1, 2))

    def depthwise_layout(w: np.ndarray) -> np.ndarray:
        """(C, multiplier, taps): a small matrix per channel."""
        return _compute_copy(w).reshape(group, w.shape[0] // group, -1)

    def kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        geo = _Geometry(attrs, x.shape[2:], w.shape[2:])
        ct = compute_dtype(x.dtype)
        n_batch, channels, m = x.shape[0], x.shape[1], w.shape[0]
        xc = x.astype(ct, copy=False)
        if min(geo.out, default=1) == 0 or n_batch == 0 or m == 0:
            y = np.zeros((n_batch, m, *geo.out), ct)
        elif geo.is_pointwise():
            y = np.matmul(as_columns.get(w, columns_layout),
                          xc.reshape(n_batch, group, channels // group, -1)).reshape(n_batch, m, *geo.out)
        elif group == channels and group > 1 and w.shape[1] == 1:
            y = _depthwise(_Flat(xc, geo), depthwise.get(w, depthwise_layout))
        elif m // group < channels // group or geo.taps_count == 1:
            y = _tap_sums(_Flat(xc, geo), per_tap.get(w, tap_layout))
        else:
            y = _columns(_Flat(xc, geo), as_columns.get(w, columns_layout))
        if b is not None:
            y += b.astype(ct, copy=False).reshape((m,) + (1,) * (x.ndim - 2))
        return y.astype(x.dtype, copy=False)

    return kernel


def _compute_copy(w: np.ndarray) -> np.ndarray:
    """A contiguous copy of the weights in their compute dtype."""
    return np.array(w, dtype=compute_dtype(w.dtype), order="C")


class _Flat:
    """The zero-padded input split into its stride phases, each flattened over space.

    Output position o reads, for kernel tap t, the element of phase p(t) at flat index
    sum(o_i * Q_i) + shift(t), where Q_i is the size of the phase grid below axis i:
    every tap reads one contiguous run of ``length`` elements (some past the last
    output of a grid row, which :meth:`crop` leaves out).
    """

    def __init__(self, x: np.ndarray, geo: _Geometry):
        n_batch, channels = x.shape[:2]
        strides = geo.strides
        grid = [-(-e // s) for e, s in zip(geo.extent, strides)]
        place = tuple(slice(b, b + s) for b, s in zip(geo.pads, x.shape[2:]))
        full = tuple(q * s for q, s in zip(grid, strides))
        if full == x.shape[2:] and not any(geo.pads[:len(grid)]):
            padded = x
        else:
            padded = np.zeros((n_batch, channels, *full), x.dtype)
            padded[ALL + place] = x
        if all(s == 1 for s in strides):
            self.phases = padded.reshape(n_batch, channels, 1, int(np.prod(full)))
        else:
            split = padded.reshape(n_batch, channels, *itertools.chain(*zip(grid, strides)))
            order = [0, 1, *range(3, split.ndim, 2), *range(2, split.ndim, 2)]
            self.phases = np.ascontiguousarray(split.transpose(order)).reshape(n_batch, channels, -1,
                                                                              int(np.prod(grid)))
        rows = [int(np.prod(grid[i + 1:])) for i in range(len(grid))]
        self.length = sum((o - 1) * r for o, r in zip(geo.out, rows)) + 1
        self.grid, self.out = grid, geo.out
        self.runs = []
        for offset in itertools.product(*(range(k) for k in geo.kernel)):
            reach = [k * d for k, d in zip(offset, geo.dilations)]
            phase = int(np.ravel_multi_index([r % s for r, s in zip(reach, strides)], strides))
            self.runs.append((phase, sum(r // s * q for r, s, q in zip(reach, strides, rows))))

    def run(self, t: int, start: int = 0, stop: int | None = None) -> np.ndarray:
        """The (N, C, stop - start) elements tap ``t`` reads for flat positions start..stop."""
        phase, shift = self.runs[t]
        stop = self.length if stop is None else stop
        return self.phases[:, :, phase, shift + start:shift + stop]

    def empty(self, lead: tuple[int, ...]) -> np.ndarray:
        """An uninitialised result of ``lead + (length,)``."""
        return np.empty(lead + (self.length,), self.phases.dtype)

    def crop(self, y: np.ndarray) -> np.ndarray:
        """The (N, M, *out) output, contiguous, from a result (N, M, >= length) whose last
        axis holds the flat positions (every output position lies below ``length``)."""
        item = y.strides[-1]
        rows = [int(np.prod(self.grid[i + 1:])) * item for i in range(len(self.grid))]
        view = as_strided(y, y.shape[:2] + tuple(self.out), y.strides[:2] + tuple(rows))
        return np.ascontiguousarray(view)


def _depthwise(flat: _Flat, w: np.ndarray) -> np.ndarray:
    """Depthwise Conv (one input channel per group): per channel, the weights times the
    columns of its taps; w is (C, multiplier, taps)."""
    n_batch, channels = flat.phases.shape[:2]
    cols = np.empty((n_batch, channels, len(flat.runs), flat.length), flat.phases.dtype)
    for t in range(len(flat.runs)):
        cols[:, :, t] = flat.run(t)
    y = np.matmul(w, cols)
    return flat.crop(y.reshape(n_batch, channels * w.shape[1], flat.length))


def _tap_sums(flat: _Flat, w: np.ndarray) -> np.ndarray:
    """Conv as one GEMM per kernel tap and group, summed in place; w is
    (group, taps, M/group, C/group). No column buffer: suits few output channels."""
    group, taps, mg, cg = w.shape
    n_batch = flat.phases.shape[0]
    y = flat.empty((n_batch, group * mg))
    tmp = np.empty((mg, flat.length), y.dtype)
    for n in range(n_batch):
        for g in range(group):
            acc = y[n, g * mg:(g + 1) * mg]
            for t in range(taps):
                np.matmul(w[g, t], flat.run(t)[n, g * cg:(g + 1) * cg], out=acc if t == 0 else tmp)
                if t:
                    acc += tmp
    return flat.crop(y)


def _columns(flat: _Flat, w: np.ndarray) -> np.ndarray:
    """Conv as im2col plus one GEMM per group; w is (group, M/group, C/group * taps).
    The columns are built for a range of positions at a time (at most COLUMN_BYTES)."""
    group, mg, ckg = w.shape
    n_batch, channels = flat.phases.shape[:2]
    taps = len(flat.runs)
    y = flat.empty((n_batch, group * mg))
    step = max(1, COLUMN_BYTES // max(1, channels * taps * y.itemsize))
    for n in range(n_batch):
        for start in range(0, flat.length, step):
            stop = min(flat.length, start + step)
            cols = np.empty((channels, taps, stop - start), y.dtype)
            for t in range(taps):
                cols[:, t] = flat.run(t, start, stop)[n]
            cols = cols.reshape(group, ckg, stop - start)
            for g in range(group):
                np.matmul(w[g], cols[g], out=y[n, g * mg:(g + 1) * mg, start:stop])
    return flat.crop(y)


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
