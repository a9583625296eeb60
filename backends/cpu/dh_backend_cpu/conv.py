"""Convolution kernels of the CPU backend.

Conv pads its input once and splits it into its stride phases, each flattened over space,
so that every kernel tap reads one contiguous run (see _Flat). On that layout it runs as
im2col plus one BLAS GEMM per group, as one GEMM per tap summed in place when there are
fewer output than input channels per group (no column buffer), or, depthwise, as a small
matrix product per channel; 1x1 convolutions without pads are one plain GEMM. Work
buffers are kept between calls. ConvTranspose runs as one GEMM per group followed by
col2im, a scatter-add of the columns into the output.
float16 is computed in float32 and cast back; float32 and float64 use BLAS directly.
Pads and output sizes come from the op library's shared arithmetic.
"""
from __future__ import annotations

import itertools
import threading
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

from dh_core.backend import Kernel
from dh_core.ir import Node, TensorType

COLUMN_BYTES = 16 << 20
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
        """A 1x1 kernel and no pads: the Conv is a plain matrix product of the input
        subsampled by the strides."""
        return self.taps_count == 1 and not any(self.pads)

    def subsample(self, x: np.ndarray) -> np.ndarray:
        """x at the positions a pointwise Conv reads."""
        if all(s == 1 for s in self.strides):
            return x
        return x[ALL + tuple(slice(0, (o - 1) * s + 1, s) for o, s in zip(self.out, self.strides))]


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

    plans: dict[tuple, _Flat | _Geometry] = {}
    scratch = Scratch()

    def plan(x_shape: tuple[int, ...], w_shape: tuple[int, ...]) -> _Flat | _Geometry:
        """The flat layout of an input shape, or its geometry for the paths without one."""
        key = (x_shape, w_shape)
        found = plans.get(key)
        if found is None:
            geo = _Geometry(attrs, x_shape[2:], w_shape[2:])
            empty = min(geo.out, default=1) == 0 or 0 in x_shape[:2] or w_shape[0] == 0
            found = plans[key] = geo if empty or geo.is_pointwise() else _Flat(x_shape, geo)
        return found

    def kernel(x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
        ct = compute_dtype(x.dtype)
        n_batch, channels, m = x.shape[0], x.shape[1], w.shape[0]
        xc = x.astype(ct, copy=False)
        flat = plan(x.shape, w.shape)
        bias = None if b is None else b.astype(ct, copy=False).reshape((m,) + (1,) * (x.ndim - 2))
        if isinstance(flat, _Flat):
            xs = flat.phases(xc, scratch)
            if group == channels and group > 1 and w.shape[1] == 1:
                y = _depthwise(flat, xs, depthwise.get(w, depthwise_layout))
            elif m // group < channels // group or len(flat.runs) == 1:
                y = _tap_sums(flat, xs, per_tap.get(w, tap_layout))
            else:
                y = _columns(flat, xs, as_columns.get(w, columns_layout))
            return flat.crop(y, bias).astype(x.dtype, copy=False)
        if flat.is_pointwise() and n_batch and m and channels:
            xg = flat.subsample(xc).reshape(n_batch, group, channels // group, -1)
            y = np.matmul(as_columns.get(w, columns_layout), xg).reshape(n_batch, m, *flat.out)
        else:
            y = np.zeros((n_batch, m, *flat.out), ct)
        if bias is not None:
            y += bias
        return y.astype(x.dtype, copy=False)

    return kernel


def _compute_copy(w: np.ndarray) -> np.ndarray:
    """A contiguous copy of the weights in their compute dtype."""
    return np.array(w, dtype=compute_dtype(w.dtype), order="C")


class _Flat:
    """How one input shape is laid out for the tap loops: zero-padded, split into its
    stride phases, each flattened over space.

    Output position o reads, for kernel tap t, the element of phase p(t) at flat index
    sum(o_i * Q_i) + shift(t), where Q_i is the size of the phase grid below axis i:
    every tap reads one contiguous run of ``length`` elements (some past the last
    output of a grid row, which :meth:`crop` leaves out).
    """

    def __init__(self, x_shape: tuple[int, ...], geo: _Geometry):
        strides = geo.strides
        grid = [-(-e // s) for e, s in zip(geo.extent, strides)]
        self.full = tuple(q * s for q, s in zip(grid, strides))
        self.place = ALL + tuple(slice(b, b + s) for b, s in zip(geo.pads, x_shape[2:]))
        self.pad = self.full != tuple(x_shape[2:]) or any(geo.pads[:len(grid)])
        self.split = None
        n_phases = int(np.prod(strides))
        if n_phases > 1:
            self.split = tuple(itertools.chain(*zip(grid, strides)))
            self.order = (0, 1, *range(3, 2 + 2 * len(grid), 2), *range(2, 2 + 2 * len(grid), 2))
        self.layout = (n_phases, int(np.prod(grid)))
        rows = [int(np.prod(grid[i + 1:])) for i in range(len(grid))]
        self.length = sum((o - 1) * r for o, r in zip(geo.out, rows)) + 1
        self.out, self.rows = tuple(geo.out), tuple(rows)
        self.runs = []
        for offset in itertools.product(*(range(k) for k in geo.kernel)):
            reach = [k * d for k, d in zip(offset, geo.dilations)]
            phase = int(np.ravel_multi_index([r % s for r, s in zip(reach, strides)], strides))
            self.runs.append((phase, sum(r // s * q for r, s, q in zip(reach, strides, rows))))

    def phases(self, x: np.ndarray, scratch: Scratch) -> np.ndarray:
        """x as (N, C, phases, positions per phase), in buffers reused across calls (the
        node's own padded buffer, whose border is written once and stays zero)."""
        lead = x.shape[:2]
        if self.pad:
            padded, fresh = scratch.get((self, "pad"), lead + self.full, x.dtype)
            if fresh:
                padded.fill(0)
            padded[self.place] = x
        else:
            padded = x
        if self.split is None:
            return padded.reshape(lead + self.layout)
        phases = TRANSIENT.take("phases", lead + self.layout, x.dtype)
        np.copyto(phases.reshape(lead + tuple(self.split[i - 2] for i in self.order[2:])),
                  padded.reshape(lead + self.split).transpose(self.order))
        return phases

    def crop(self, y: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        """The (N, M, *out) output, a fresh array, from a contiguous result (N, M, length)
        whose last axis holds the flat positions, with ``bias`` added on the way."""
        item = y.itemsize
        view = np.ndarray(y.shape[:2] + self.out, y.dtype, y, 0, y.strides[:2] + tuple(r * item for r in self.rows))
        if bias is None:
            return np.array(view, order="C")
        return np.add(view, bias, out=np.empty(view.shape, y.dtype))


def _depthwise(flat: _Flat, xs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Depthwise Conv (one input channel per group) over the flat positions, (N, M, length):
    per channel, the weights times the columns of its taps; w is (C, multiplier, taps)."""
    n_batch, channels = xs.shape[:2]
    length = flat.length
    cols = TRANSIENT.take("columns", (n_batch, channels, len(flat.runs), length), xs.dtype)
    for t, (phase, shift) in enumerate(flat.runs):
        cols[:, :, t] = xs[:, :, phase, shift:shift + length]
    return np.matmul(w, cols).reshape(n_batch, channels * w.shape[1], length)


def _tap_sums(flat: _Flat, xs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Conv over the flat positions, (N, M, length), as one GEMM per kernel tap and group,
    summed in place; w is (group, taps, M/group, C/group). No column buffer: suits few
    output channels."""
    group, _, mg, cg = w.shape
    n_batch, length = xs.shape[0], flat.length
    y = TRANSIENT.take("result", (n_batch, group * mg, length), xs.dtype)
    tmp = TRANSIENT.take("tap", (mg, length), xs.dtype)
    for n in range(n_batch):
        for g in range(group):
            acc = y[n, g * mg:(g + 1) * mg]
            inputs = xs[n, g * cg:(g + 1) * cg]
            for t, (phase, shift) in enumerate(flat.runs):
                np.matmul(w[g, t], inputs[:, phase, shift:shift + length], out=acc if t == 0 else tmp)
                if t:
                    acc += tmp
    return y


def _columns(flat: _Flat, xs: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Conv over the flat positions, (N, M, length), as im2col plus one GEMM per group; w is
    (group, M/group, C/group * taps). The columns are built for a range of positions at a
    time (at most COLUMN_BYTES)."""
    group, mg, ckg = w.shape
    n_batch, channels = xs.shape[:2]
    taps, length = len(flat.runs), flat.length
    y = TRANSIENT.take("result", (n_batch, group * mg, length), xs.dtype)
    step = max(1, min(length, COLUMN_BYTES // max(1, channels * taps * y.itemsize)))
    buffer = TRANSIENT.take("columns", (channels * taps * step,), xs.dtype)
    for n in range(n_batch):
        for start in range(0, length, step):
            stop = min(length, start + step)
            cols = buffer[:channels * taps * (stop - start)].reshape(channels, taps, stop - start)
            for t, (phase, shift) in enumerate(flat.runs):
                cols[:, t] = xs[n, :, phase, shift + start:shift + stop]
            cols = cols.reshape(group, ckg, stop - start)
            for g in range(group):
                np.matmul(w[g], cols[g], out=y[n, g * mg:(g + 1) * mg, start:stop])
    return y


class Scratch(threading.local):
    """Work buffers of a kernel kept between its calls (one set per thread): the same
    shapes come back on every run of a model, and fresh pages cost more than the copies."""

    def __init__(self):
        self.buffers: dict = {}

    def get(self, key, shape: tuple[int, ...], dtype) -> tuple[np.ndarray, bool]:
        """A buffer of ``shape`` and ``dtype`` for ``key``, and whether it is new."""
        found = self.buffers.get(key)
        if found is not None and found.shape == shape and found.dtype == dtype:
            return found, False
        found = self.buffers[key] = np.empty(shape, dtype)
        return found, True

    def take(self, purpose: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A contiguous ``shape`` at the front of one grow-only buffer per purpose and
        dtype: for buffers that live only during one kernel call."""
        size = int(np.prod(shape))
        key = (purpose, np.dtype(dtype))
        found = self.buffers.get(key)
        if found is None or found.size < size:
            found = self.buffers[key] = np.empty(size, dtype)
        return found[:size].reshape(shape)


TRANSIENT = Scratch()
"""Buffers that live during one kernel call (columns, results before cropping), shared
by all the kernels of a thread: they take the memory of the largest node, not of all."""


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
