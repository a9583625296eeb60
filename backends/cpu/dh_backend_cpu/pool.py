"""Pooling kernels of the CPU backend.

MaxPool and AveragePool reduce one spatial axis at a time over strided views of the
padded input (a rectangular window is separable, so a k x k window costs 2k passes, not
k*k). MaxPool's Indices output walks every kernel tap and keeps the first maximum.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dh_core.backend import Kernel, returns_tuple
from dh_core.ir import Node, TensorType
from dh_core.ops.conv import effective_kernel, output_size, resolve_pads, spatial_attr, window_slices

from .conv import ALL, Scratch, compute_dtype, node_attrs


class _Window:
    """A pooling node's geometry for one input shape."""

    def __init__(self, attrs: dict, shape: Sequence[int]):
        self.in_shape = tuple(shape[2:])
        n = len(self.in_shape)
        self.kernel = [int(k) for k in attrs["kernel_shape"]]
        self.strides = spatial_attr(attrs["strides"], n, 1)
        self.dilations = spatial_attr(attrs["dilations"], n, 1)
        pads = resolve_pads(attrs["auto_pad"], self.in_shape, self.kernel, self.strides, self.dilations,
                            attrs["pads"])
        self.begin, self.end = pads[:n], pads[n:]
        self.out = [output_size(self.in_shape[i], self.kernel[i], self.strides[i], self.dilations[i],
                                self.begin[i], self.end[i], bool(attrs["ceil_mode"])) for i in range(n)]
        self.extent = [max(self.begin[i] + self.in_shape[i] + self.end[i],
                           (self.out[i] - 1) * self.strides[i] + effective_kernel(self.kernel[i], self.dilations[i]))
                       for i in range(n)]

    def pad(self, x: np.ndarray, value, scratch: Scratch) -> np.ndarray:
        """x placed in a buffer of the padded extent filled with ``value``; ceil mode may
        read past the end pad, so the extent can exceed the declared pads. The buffer is
        kept for the next call: only its interior changes."""
        if not any(self.begin) and tuple(self.extent) == self.in_shape:
            return x
        out, fresh = scratch.get((self, value), x.shape[:2] + tuple(self.extent), x.dtype)
        if fresh:
            out.fill(value)
        out[ALL + tuple(slice(b, b + size) for b, size in zip(self.begin, self.in_shape))] = x
        return out

    def tap(self, axis: int, k: int) -> slice:
        """The strided slice of spatial ``axis`` that kernel tap ``k`` reads."""
        start, count = k * self.dilations[axis], self.out[axis]
        return slice(start, start + (count - 1) * self.strides[axis] + 1 if count else start, self.strides[axis])

    def reduce(self, xp: np.ndarray, combine) -> np.ndarray:
        """Combine the taps of every window, one spatial axis at a time."""
        acc = xp
        for axis, k in enumerate(self.kernel):
            lead = (slice(None),) * (2 + axis)
            result = acc[lead + (self.tap(axis, 0),)].copy()
            for t in range(1, k):
                combine(result, acc[lead + (self.tap(axis, t),)], out=result)
            acc = result
        return acc

    def counts(self, include_pad: bool) -> np.ndarray:
        """Number of positions each window averages over, shaped to broadcast on Y: the
        input's own, plus the declared pads with ``include_pad`` (never ceil mode's extra)."""
        total = np.ones((), np.int64)
        for axis, (k, s, d, b) in enumerate(zip(self.kernel, self.strides, self.dilations, self.begin)):
            size = self.in_shape[axis]
            lo, hi = (-b, size + self.end[axis]) if include_pad else (0, size)
            pos = np.arange(self.out[axis])[:, None] * s + np.arange(k)[None, :] * d - b
            total = np.multiply.outer(total, ((pos >= lo) & (pos < hi)).sum(axis=1))
        return total


def _windows(attrs: dict):
    """A function from input shape to its _Window, computing each shape's once."""
    known: dict[tuple, _Window] = {}

    def get(shape: tuple[int, ...]) -> _Window:
        win = known.get(shape)
        if win is None:
            win = known[shape] = _Window(attrs, shape)
        return win

    return get


def _lowest(dtype: np.dtype):
    return -np.inf if dtype.kind == "f" else np.iinfo(dtype).min


def max_pool_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of MaxPool; returns (Y, Indices) when the op is known to have two outputs,
    with Indices None unless the node asks for it."""
    attrs = node_attrs(node)
    as_tuple = returns_tuple(node)
    want_indices = len(node.outputs) > 1 and bool(node.outputs[1])
    column_major = bool(attrs["storage_order"])

    windows, scratch = _windows(attrs), Scratch()

    def kernel(x: np.ndarray):
        win = windows(x.shape)
        xp = win.pad(x, _lowest(x.dtype), scratch)
        if want_indices:
            y, indices = _max_with_indices(x, xp, win, column_major)
        else:
            y, indices = win.reduce(xp, np.maximum), None
        return (y, indices) if as_tuple else y

    return kernel


def _max_with_indices(x: np.ndarray, xp: np.ndarray, win: _Window,
                      column_major: bool) -> tuple[np.ndarray, np.ndarray]:
    """Max and the flat index (over the whole input) of the first maximum of each window;
    NaN counts as the largest value and pads never win."""
    real = np.zeros(win.extent, bool)
    real[tuple(slice(b, b + s) for b, s in zip(win.begin, win.in_shape))] = True
    coords = [np.arange(e) - b for e, b in zip(win.extent, win.begin)]
    clipped = np.ix_(*[np.clip(c, 0, max(s - 1, 0)) for c, s in zip(coords, win.in_shape)])
    spatial = np.ravel_multi_index(clipped, win.in_shape, order="F" if column_major else "C")
    planes = np.arange(x.shape[0] * x.shape[1], dtype=np.int64) * int(np.prod(win.in_shape))
    base = planes.reshape(x.shape[:2] + (1,) * len(win.in_shape))
    y = np.full((*x.shape[:2], *win.out), _lowest(x.dtype), x.dtype)
    indices = np.full(y.shape, -1, np.int64)
    for _, window in window_slices(win.kernel, win.strides, win.dilations, win.out):
        view = xp[ALL + window]
        better = (view > y) | ((indices < 0) & real[window])
        if x.dtype.kind == "f":
            better |= np.isnan(view) & ~np.isnan(y)
        np.copyto(y, view, where=better)
        np.copyto(indices, base + spatial[window], where=better)
    return y, indices


def average_pool_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of AveragePool (ceil_mode, dilations, pads, auto_pad, count_include_pad)."""
    attrs = node_attrs(node)
    include_pad = bool(attrs["count_include_pad"])

    windows, scratch = _windows(attrs), Scratch()
    counts: dict[tuple, np.ndarray] = {}

    def kernel(x: np.ndarray) -> np.ndarray:
        win = windows(x.shape)
        ct = compute_dtype(x.dtype)
        total = win.reduce(win.pad(x.astype(ct, copy=False), 0, scratch), np.add)
        key = (x.shape, ct)
        if key not in counts:
            counts[key] = win.counts(include_pad).astype(ct)
        with np.errstate(invalid="ignore", divide="ignore"):
            total /= counts[key]
        return total.astype(x.dtype, copy=False)

    return kernel


def global_average_pool_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of GlobalAveragePool: the mean over every spatial axis, kept as size 1."""

    def kernel(x: np.ndarray) -> np.ndarray:
        mean = np.mean(x, axis=tuple(range(2, x.ndim)), keepdims=True, dtype=compute_dtype(x.dtype))
        return mean.astype(x.dtype, copy=False)

    return kernel


def global_max_pool_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of GlobalMaxPool: the max over every spatial axis, kept as size 1."""

    def kernel(x: np.ndarray) -> np.ndarray:
        return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)

    return kernel
