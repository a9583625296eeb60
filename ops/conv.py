"""Convolution and pooling ops, and the pad/output-size arithmetic they share.

The module-level helpers (``resolve_pads``, ``output_size``, ``conv_transpose_pads``...)
work on plain ints so that backends can import them to size their kernels.
Pads use the ONNX layout ``[x1_begin, x2_begin, ..., x1_end, x2_end, ...]``.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")


# -- shared arithmetic ---------------------------------------------------------------
def effective_kernel(kernel: int, dilation: int) -> int:
    """The extent of a dilated kernel: ``(kernel - 1) * dilation + 1``."""
    return (kernel - 1) * dilation + 1


def spatial_attr(values: Sequence[int] | None, n: int, fill: int) -> list[int]:
    """An ints attribute over ``n`` spatial axes (``strides``, ``dilations``), or its default."""
    return [fill] * n if values is None else [int(v) for v in values]


def same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    """(begin, end) padding of one axis so that the output has ``ceil(size / stride)``
    elements; the odd element goes to the end (SAME_UPPER) or the beginning (SAME_LOWER)."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + effective_kernel(kernel, dilation) - size)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


def resolve_pads(auto_pad: str, sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                 dilations: Sequence[int], pads: Sequence[int] | None) -> list[int]:
    """The explicit pads of a Conv or pooling node, applying ``auto_pad``."""
    n = len(kernel)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        pairs = [same_pads(sizes[i], kernel[i], strides[i], dilations[i], auto_pad == "SAME_LOWER")
                 for i in range(n)]
        return [p[0] for p in pairs] + [p[1] for p in pairs]
    if auto_pad == "VALID" or pads is None:
        return [0] * (2 * n)
    if auto_pad != "NOTSET":
        raise ShapeError(f"auto_pad must be one of {', '.join(AUTO_PADS)}, got '{auto_pad}'")
    if len(pads) != 2 * n:
        raise ShapeError(f"pads has {len(pads)} values; {2 * n} expected for {n} spatial axes")
    return [int(p) for p in pads]


def output_size(size: int, kernel: int, stride: int, dilation: int, pad_begin: int, pad_end: int,
                ceil_mode: bool = False) -> int:
    """Number of windows along one axis. With ``ceil_mode`` a partial last window counts,
    unless it would start in the end padding. Never negative."""
    span = size + pad_begin + pad_end - effective_kernel(kernel, dilation)
    if span < 0:
        return 0
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def conv_transpose_pads(auto_pad: str, sizes: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
                        dilations: Sequence[int], output_padding: Sequence[int], pads: Sequence[int] | None,
                        output_shape: Sequence[int] | None) -> list[int]:
    """The pads (output crops) of a ConvTranspose node. With ``output_shape`` or
    SAME_* they are derived from the output size. An output_shape beyond what the input
    covers extends the output at the end, as output_padding does (a negative end pad)."""
    n = len(kernel)
    if output_shape is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        output_shape = [sizes[i] * strides[i] for i in range(n)]
    if output_shape is None:
        return resolve_pads(auto_pad, sizes, kernel, strides, dilations, pads)
    if len(output_shape) != n:
        raise ShapeError(f"output_shape has {len(output_shape)} values; {n} spatial sizes expected")
    begin, end = [], []
    for i in range(n):
        total = (strides[i] * (sizes[i] - 1) + output_padding[i] + effective_kernel(kernel[i], dilations[i])
                 - int(output_shape[i]))
        half = max(total, 0) // 2
        upper = auto_pad == "SAME_UPPER"
        begin.append(half if upper else max(total, 0) - half)
        end.append(total - begin[-1])
    return begin + end


def conv_transpose_size(size: int, kernel: int, stride: int, dilation: int, output_padding: int,
                        pad_begin: int, pad_end: int) -> int:
    """Output size of one ConvTranspose axis."""
    return stride * (size - 1) + output_padding + effective_kernel(kernel, dilation) - pad_begin - pad_end


def window_slices(kernel: Sequence[int], strides: Sequence[int], dilations: Sequence[int],
                  out: Sequence[int]) -> Iterator[tuple[tuple[int, ...], tuple[slice, ...]]]:
    """For each kernel offset (row-major), the strided slices of a padded input that line
    the offset up with every output position."""
    for offset in itertools.product(*(range(k) for k in kernel)):
        yield offset, tuple(slice(o * d, o * d + (n - 1) * s + 1 if n else o * d, s)
                            for o, d, s, n in zip(offset, dilations, strides, out))


# -- helpers of the op classes -----------------------------------------------------------
def _accumulator(dtype: np.dtype) -> np.dtype:
    """The dtype a reference accumulates sums in: float64 for floats."""
    return np.dtype(np.float64) if dtype.kind == "f" else dtype


def _spatial_known(shape, start: int = 2) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape[start:])


def _kernel_of(ctx: InferContext) -> list[int] | None:
    ks = ctx.attrs.get("kernel_shape")
    if ks is not None:
        return [int(k) for k in ks]
    w = ctx.shape(1)
    return list(w[2:]) if _spatial_known(w) else None


def _pool_geometry(sizes: Sequence[int], attrs: dict) -> tuple[list[int], list[int], list[int], list[int]]:
    """(kernel, strides, dilations, pads) of a pooling node over the given spatial sizes."""
    kernel = [int(k) for k in attrs["kernel_shape"]]
    n = len(kernel)
    if len(sizes) != n:
        raise ShapeError(f"kernel_shape has {n} axes but the input has {len(sizes)} spatial axes")
    strides = spatial_attr(attrs.get("strides"), n, 1)
    dilations = spatial_attr(attrs.get("dilations"), n, 1)
    pads = resolve_pads(attrs.get("auto_pad", "NOTSET"), sizes, kernel, strides, dilations, attrs.get("pads"))
    return kernel, strides, dilations, pads


def _pool_out(sizes: Sequence[int], attrs: dict) -> list[int]:
    kernel, strides, dilations, pads = _pool_geometry(sizes, attrs)
    n = len(kernel)
    return [output_size(sizes[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + n],
                        bool(attrs.get("ceil_mode", 0))) for i in range(n)]


def _pool_infer(ctx: InferContext, dtype: str | None) -> TensorType | None:
    shape = ctx.shape(0)
    if dtype is None:
        return None
    if shape is None:
        return TensorType(dtype, None)
    if not _spatial_known(shape):
        return TensorType(dtype, tuple(shape[:2]) + (None,) * (len(shape) - 2))
    return TensorType(dtype, tuple(shape[:2]) + tuple(_pool_out(shape[2:], ctx.attrs)))


@dataclass
class _Windows:
    """An input padded for pooling so that every window lies inside it."""

    padded: np.ndarray
    real: np.ndarray
    """Mask of the input's own elements, in padded coordinates."""
    declared: np.ndarray
    """Mask of the input plus its declared pads (what count_include_pad counts)."""
    begin: list[int]
    out: list[int]
    slices: list[tuple[slice, ...]]


def _pool_windows(x: np.ndarray, attrs: dict, fill) -> _Windows:
    sizes = x.shape[2:]
    kernel, strides, dilations, pads = _pool_geometry(sizes, attrs)
    n = len(kernel)
    out = _pool_out(sizes, attrs)
    widths = []
    for i in range(n):
        need = (out[i] - 1) * strides[i] + effective_kernel(kernel[i], dilations[i]) if out[i] else 0
        widths.append((pads[i], max(pads[i + n], need - sizes[i] - pads[i])))
    padded = np.pad(x, [(0, 0), (0, 0)] + widths, constant_values=fill)
    real = np.pad(np.ones(sizes, bool), widths, constant_values=False)
    declared = np.zeros(padded.shape[2:], bool)
    declared[tuple(slice(0, pads[i] + sizes[i] + pads[i + n]) for i in range(n))] = True
    slices = [w for _, w in window_slices(kernel, strides, dilations, out)]
    return _Windows(padded, real, declared, pads[:n], out, slices)


def _weights_kernel(w: np.ndarray, kernel_shape: Sequence[int] | None) -> list[int]:
    """The kernel's spatial shape: W's, which a kernel_shape attribute must repeat."""
    kernel = list(w.shape[2:])
    if kernel_shape is not None and [int(k) for k in kernel_shape] != kernel:
        raise ShapeError(f"kernel_shape {list(kernel_shape)} does not match weights {list(w.shape)}")
    return kernel


# -- ops ----------------------------------------------------------------------------------
class _Convolution(OpDef):
    """What Conv and ConvTranspose share: inputs, type inference, stride arithmetic."""

    inputs = (Param("X", "T"), Param("W", "T"), Param("B", "T", optional=True))
    outputs = (Param("Y", "T"),)
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext):
        (dtype,) = self.output_dtypes(ctx)
        x = ctx.shape(0)
        if dtype is None or x is None:
            return [None if dtype is None else TensorType(dtype, None)]
        m = self._out_channels(ctx.shape(1), int(ctx.attrs.get("group", 1)))
        kernel = _kernel_of(ctx)
        if not _spatial_known(x) or kernel is None:
            return [TensorType(dtype, (x[0], m) + (None,) * (len(x) - 2))]
        out, _ = self._geometry(list(x[2:]), kernel, ctx.attrs)
        return [TensorType(dtype, (x[0], m) + tuple(out))]

    @staticmethod
    def _strides_dilations(sizes: list[int], kernel: list[int], attrs: dict):
        n = len(kernel)
        if len(sizes) != n:
            raise ShapeError(f"kernel has {n} spatial axes but the input has {len(sizes)}")
        return n, spatial_attr(attrs.get("strides"), n, 1), spatial_attr(attrs.get("dilations"), n, 1)


@register
class Conv(_Convolution):
    name = "Conv"
    attrs = {"auto_pad": Attr("string", "NOTSET"), "dilations": Attr("ints", None),
             "group": Attr("int", 1), "kernel_shape": Attr("ints", None),
             "pads": Attr("ints", None), "strides": Attr("ints", None)}

    @staticmethod
    def _out_channels(w, group: int):
        return w[0] if w is not None else None

    @classmethod
    def _geometry(cls, sizes: list[int], kernel: list[int], attrs: dict):
        """(output sizes, (strides, dilations, pads))."""
        n, strides, dilations = cls._strides_dilations(sizes, kernel, attrs)
        pads = resolve_pads(attrs.get("auto_pad", "NOTSET"), sizes, kernel, strides, dilations, attrs.get("pads"))
        out = [output_size(sizes[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + n]) for i in range(n)]
        return out, (strides, dilations, pads)

    def reference(self, x, w, b=None, *, auto_pad, dilations, group, kernel_shape, pads, strides):
        attrs = {"auto_pad": auto_pad, "dilations": dilations, "pads": pads, "strides": strides}
        sizes, kernel = list(x.shape[2:]), _weights_kernel(w, kernel_shape)
        n_, c = x.shape[:2]
        m = w.shape[0]
        if group < 1 or c != w.shape[1] * group or m % group:
            raise ShapeError(f"input has {c} channels; weights {list(w.shape)} do not fit group {group}")
        out, (strides_, dilations_, pads_) = self._geometry(sizes, kernel, attrs)
        k = len(kernel)
        acc = _accumulator(x.dtype)
        xp = np.pad(x.astype(acc), [(0, 0), (0, 0)] + [(pads_[i], pads_[i + k]) for i in range(k)])
        xg = xp.reshape(n_, group, c // group, *xp.shape[2:])
        wg = w.astype(acc).reshape(group, m // group, c // group, *kernel)
        y = np.zeros((n_, group, m // group, *out), acc)
        for offset, window in window_slices(kernel, strides_, dilations_, out):
            y += np.einsum("ngc...,gmc->ngm...", xg[(slice(None),) * 3 + window], wg[(Ellipsis, *offset)])
        y = y.reshape(n_, m, *out)
        if b is not None:
            y += b.astype(acc).reshape(m, *([1] * k))
        return y.astype(x.dtype)


@register
class ConvTranspose(_Convolution):
    name = "ConvTranspose"
    attrs = {"auto_pad": Attr("string", "NOTSET"), "dilations": Attr("ints", None),
             "group": Attr("int", 1), "kernel_shape": Attr("ints", None),
             "output_padding": Attr("ints", None), "output_shape": Attr("ints", None),
             "pads": Attr("ints", None), "strides": Attr("ints", None)}

    @staticmethod
    def _out_channels(w, group: int):
        return w[1] * group if w is not None and isinstance(w[1], int) else None

    @classmethod
    def _geometry(cls, sizes: list[int], kernel: list[int], attrs: dict):
        """(output sizes, (strides, dilations, pads))."""
        n, strides, dilations = cls._strides_dilations(sizes, kernel, attrs)
        out_pad = spatial_attr(attrs.get("output_padding"), n, 0)
        pads = conv_transpose_pads(attrs.get("auto_pad", "NOTSET"), sizes, kernel, strides, dilations, out_pad,
                                   attrs.get("pads"), attrs.get("output_shape"))
        out = [conv_transpose_size(sizes[i], kernel[i], strides[i], dilations[i], out_pad[i], pads[i], pads[i + n])
               for i in range(n)]
        if any(o < 0 for o in out):
            raise ShapeError(f"ConvTranspose output size {out} is negative")
        return out, (strides, dilations, pads)

    def reference(self, x, w, b=None, *, auto_pad, dilations, group, kernel_shape, output_padding,
                  output_shape, pads, strides):
        attrs = {"auto_pad": auto_pad, "dilations": dilations, "output_padding": output_padding,
                 "output_shape": output_shape, "pads": pads, "strides": strides}
        sizes, kernel = list(x.shape[2:]), _weights_kernel(w, kernel_shape)
        n_, c = x.shape[:2]
        if group < 1 or w.shape[0] != c or c % group:
            raise ShapeError(f"input has {c} channels; weights have {w.shape[0]} in {group} groups")
        mg = w.shape[1]
        out, (strides_, dilations_, pads_) = self._geometry(sizes, kernel, attrs)
        k = len(kernel)
        acc = _accumulator(x.dtype)
        # Scatter into a canvas that holds both the full result and the requested crop.
        full = [effective_kernel(kernel[i], dilations_[i]) + (sizes[i] - 1) * strides_[i] for i in range(k)]
        lead = [max(0, -pads_[i]) for i in range(k)]
        canvas_size = [lead[i] + max(full[i], pads_[i] + out[i]) for i in range(k)]
        canvas = np.zeros((n_, group, mg, *canvas_size), acc)
        xg = x.astype(acc).reshape(n_, group, c // group, *sizes)
        wg = w.astype(acc).reshape(group, c // group, mg, *kernel)
        for offset, window in window_slices(kernel, strides_, dilations_, sizes):
            shifted = tuple(slice(s.start + lead[i], s.stop + lead[i], s.step) for i, s in enumerate(window))
            canvas[(slice(None),) * 3 + shifted] += np.einsum("ngc...,gcm->ngm...", xg, wg[(Ellipsis, *offset)])
        crop = tuple(slice(lead[i] + pads_[i], lead[i] + pads_[i] + out[i]) for i in range(k))
        y = canvas[(slice(None),) * 3 + crop].reshape(n_, group * mg, *out)
        if b is not None:
            y = y + b.astype(acc).reshape(group * mg, *([1] * k))
        return y.astype(x.dtype)


@register
class MaxPool(OpDef):
    name = "MaxPool"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"), Param("Indices", "I", optional=True))
    attrs = {"auto_pad": Attr("string", "NOTSET"), "ceil_mode": Attr("int", 0), "dilations": Attr("ints", None),
             "kernel_shape": Attr("ints"), "pads": Attr("ints", None), "storage_order": Attr("int", 0),
             "strides": Attr("ints", None)}
    constraints = {"T": dt.FLOATS + ("int8", "uint8"), "I": ("int64",)}

    def infer(self, ctx: InferContext):
        y = _pool_infer(ctx, ctx.dtype(0))
        indices = TensorType("int64", None if y is None else y.shape)
        return [y, indices][: max(1, len(ctx.node.outputs))]

    def reference(self, x, *, auto_pad, ceil_mode, dilations, kernel_shape, pads, storage_order, strides):
        """Max over each window's own elements (pads never win); NaN propagates. Indices
        are flat offsets into X (row-major, or column-major over the spatial axes when
        ``storage_order`` is 1) of the first maximum in window order."""
        attrs = {"auto_pad": auto_pad, "ceil_mode": ceil_mode, "dilations": dilations,
                 "kernel_shape": kernel_shape, "pads": pads, "strides": strides}
        lowest = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
        win = _pool_windows(x, attrs, lowest)
        sizes = x.shape[2:]
        k = len(sizes)
        coords = np.indices(win.padded.shape[2:]) - np.reshape(win.begin, (k,) + (1,) * k)
        coords = tuple(np.clip(c, 0, max(s - 1, 0)) for c, s in zip(coords, sizes))
        spatial_index = np.ravel_multi_index(coords, sizes, order="F" if storage_order else "C")
        planes = np.arange(x.shape[0] * x.shape[1], dtype=np.int64).reshape(x.shape[:2] + (1,) * k)
        base = planes * int(np.prod(sizes))
        best = np.full(x.shape[:2] + tuple(win.out), lowest, x.dtype)
        index = np.full(best.shape, -1, np.int64)
        have = np.zeros(best.shape, bool)
        for window in win.slices:
            v = win.padded[(slice(None), slice(None)) + window]
            valid = win.real[window]
            take = valid & (~have | _beats(v, best))
            best = np.where(take, v, best)
            index = np.where(take, base + spatial_index[window], index)
            have |= valid
        return best, index


def _beats(v: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Where v replaces the running maximum: larger, or the first NaN."""
    if v.dtype.kind != "f":
        return v > best
    return (v > best) | (np.isnan(v) & ~np.isnan(best))


@register
class AveragePool(OpDef):
    name = "AveragePool"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    attrs = {"auto_pad": Attr("string", "NOTSET"), "ceil_mode": Attr("int", 0),
             "count_include_pad": Attr("int", 0), "dilations": Attr("ints", None),
             "kernel_shape": Attr("ints"), "pads": Attr("ints", None), "strides": Attr("ints", None)}
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext):
        return [_pool_infer(ctx, ctx.dtype(0))]

    def reference(self, x, *, auto_pad, ceil_mode, count_include_pad, dilations, kernel_shape, pads, strides):
        """Mean over each window's elements; with ``count_include_pad`` the declared
        pads count as zeros, while the extra end of a ceil_mode window never counts."""
        attrs = {"auto_pad": auto_pad, "ceil_mode": ceil_mode, "dilations": dilations,
                 "kernel_shape": kernel_shape, "pads": pads, "strides": strides}
        acc = _accumulator(x.dtype)
        win = _pool_windows(x.astype(acc), attrs, 0)
        counted = win.declared if count_include_pad else win.real
        total = np.zeros(x.shape[:2] + tuple(win.out), acc)
        count = np.zeros(tuple(win.out), acc)
        for window in win.slices:
            total += win.padded[(slice(None), slice(None)) + window]
            count += counted[window]
        with np.errstate(invalid="ignore", divide="ignore"):
            return (total / count).astype(x.dtype)


class _GlobalPool(OpDef):
    """Reduces every spatial axis of (N, C, D1, ...) to size 1."""

    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    constraints = {"T": dt.FLOATS}
    composite = True
    reduce_op: ClassVar[str]
    """The Reduce* op of the decomposition."""

    def infer(self, ctx: InferContext):
        shape, dtype = ctx.shape(0), ctx.dtype(0)
        if shape is not None:
            shape = tuple(shape[:2]) + (1,) * (len(shape) - 2)
        return [None if dtype is None else TensorType(dtype, shape)]

    def decompose(self, d):
        axes = list(range(2, d.rank(0)))
        extra = {} if axes else {"noop_with_empty_axes": 1}
        d.op(self.reduce_op, d.inputs[0], d.const(np.array(axes, np.int64)), outputs=d.outputs,
             keepdims=1, **extra)


@register
class GlobalAveragePool(_GlobalPool):
    name = "GlobalAveragePool"
    reduce_op = "ReduceMean"

    def reference(self, x):
        axes = tuple(range(2, x.ndim))
        return np.mean(x, axis=axes, keepdims=True, dtype=_accumulator(x.dtype)).astype(x.dtype)


@register
class GlobalMaxPool(_GlobalPool):
    name = "GlobalMaxPool"
    reduce_op = "ReduceMax"

    def reference(self, x):
        return np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True)


def multilinear_sample(x: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """Sample x (..., *sizes) at fractional positions ``coords`` (k, ...): one row per
    spatial axis, the leading dims broadcasting against x's. Each point interpolates its
    2**k neighbours linearly per axis; neighbours outside x count as 0."""
    k = coords.shape[0]
    sizes = x.shape[x.ndim - k:]
    flat = x.reshape(x.shape[:x.ndim - k] + (int(np.prod(sizes)),))
    if flat.shape[-1] == 0:
        return np.zeros(np.broadcast_shapes(flat.shape[:-1], coords.shape[1:-1]) + coords.shape[-1:])
    base = np.floor(coords)
    frac = coords - base
    base = base.astype(np.int64)
    total = 0
    for corner in itertools.product((0, 1), repeat=k):
        index = np.zeros(coords.shape[1:], np.int64)
        weight = np.ones(coords.shape[1:])
        inside = np.ones(coords.shape[1:], bool)
        for axis, bit in enumerate(corner):
            i = base[axis] + bit
            inside &= (i >= 0) & (i < sizes[axis])
            index = index * sizes[axis] + np.clip(i, 0, sizes[axis] - 1)
            weight = weight * (frac[axis] if bit else 1 - frac[axis])
        lead = np.broadcast_shapes(flat.shape[:-1], index.shape[:-1])
        index = np.broadcast_to(index, lead + index.shape[-1:])
        values = np.take_along_axis(np.broadcast_to(flat, lead + flat.shape[-1:]), index, axis=-1)
        total = total + np.where(inside, values * weight, 0)
    return np.asarray(total)


@register
class DeformConv(Conv):
    """Deformable convolution (opset 22): each kernel tap of each output position reads the
    input at its regular place plus a learned fractional ``offset`` (multilinear
    interpolation, zeros outside the input), scaled by an optional ``mask``. Input
    channels split into ``offset_group`` groups with their own offsets and mask; ``group``
    splits channels as in Conv. offset is (N, offset_group * prod(kernel) * k, *out),
    ordered (group, kernel taps row-major, axis); mask is (N, offset_group * prod(kernel), *out)."""

    name = "DeformConv"
    inputs = (Param("X", "T"), Param("W", "T"), Param("offset", "T"), Param("B", "T", optional=True),
              Param("mask", "T", optional=True))
    attrs = {"dilations": Attr("ints", None), "group": Attr("int", 1), "kernel_shape": Attr("ints", None),
             "offset_group": Attr("int", 1), "pads": Attr("ints", None), "strides": Attr("ints", None)}

    def reference(self, x, w, offset, b=None, mask=None, *, dilations, group, kernel_shape, offset_group, pads,
                  strides):
        sizes, kernel = list(x.shape[2:]), _weights_kernel(w, kernel_shape)
        n_, c = x.shape[:2]
        m, k = w.shape[0], len(kernel)
        if group < 1 or c != w.shape[1] * group or m % group:
            raise ShapeError(f"DeformConv input has {c} channels; weights {list(w.shape)} do not fit group {group}")
        if offset_group < 1 or c % offset_group:
            raise ShapeError(f"DeformConv input has {c} channels, not divisible by offset_group {offset_group}")
        out, (strides_, dilations_, pads_) = self._geometry(sizes, kernel, {"dilations": dilations, "pads": pads,
                                                                           "strides": strides})
        taps = int(np.prod(kernel))
        want = [n_, offset_group * taps * k, *out]
        if list(offset.shape) != want:
            raise ShapeError(f"DeformConv offset has shape {list(offset.shape)}, expected {want}")
        if mask is not None and list(mask.shape) != [n_, offset_group * taps, *out]:
            raise ShapeError(f"DeformConv mask has shape {list(mask.shape)}, expected "
                             f"{[n_, offset_group * taps, *out]}")
        # Sampling positions (axis, N, offset group, tap, *out): the regular grid plus offsets.
        grid = np.stack(np.meshgrid(*(np.arange(o) * s - p for o, s, p in zip(out, strides_, pads_)),
                                    indexing="ij"))
        tap = np.stack(np.meshgrid(*(np.arange(kk) * d for kk, d in zip(kernel, dilations_)), indexing="ij"))
        regular = tap.reshape(k, taps, *([1] * k)) + grid.reshape(k, 1, *out)
        shifts = offset.astype(np.float64).reshape(n_, offset_group, taps, k, *out)
        coords = np.moveaxis(shifts, 3, 0) + regular[:, np.newaxis, np.newaxis]
        # Each offset group's channels sampled at its positions: (N, G_off, C / G_off, taps * out).
        xg = x.astype(np.float64).reshape(n_, offset_group, c // offset_group, *sizes)
        points = taps * int(np.prod(out))
        cols = multilinear_sample(xg, coords.reshape(k, n_, offset_group, 1, points))
        cols = cols.reshape(n_, offset_group, c // offset_group, taps, *out)
        if mask is not None:
            cols = cols * mask.astype(np.float64).reshape(n_, offset_group, 1, taps, *out)
        cols = cols.reshape(n_, group, c // group, taps, *out)
        wg = w.astype(np.float64).reshape(group, m // group, c // group, taps)
        y = np.einsum("ngct...,gmct->ngm...", cols, wg).reshape(n_, m, *out)
        if b is not None:
            y = y + b.astype(np.float64).reshape(m, *([1] * k))
        return y.astype(x.dtype)
