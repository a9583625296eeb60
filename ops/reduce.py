"""Reductions (opset-28 form: ``axes`` is an optional int64 input), ArgMax/ArgMin,
CumSum, CumProd and TopK.

Reducing over an empty set of values gives the reduction's identity (0 for sums, 1 for
products, the dtype's lowest value for max, -inf for log-sums). With no axes (input
omitted or empty) every axis is reduced, unless ``noop_with_empty_axes`` is 1: then the
reduction is over no axis and only the op's elementwise part applies (ReduceSumSquare
squares, ReduceL1 takes absolute values). float16 sums and products accumulate in
float32; integer ones wrap in their own dtype.
"""
from __future__ import annotations

import numpy as np

from dh_core import dtypes as dt
from dh_core.ir import TensorType

from .base import Attr, Decomposer, InferContext, OpDef, Param
from .elementwise import trunc_divide
from .registry import register
from .shapes import Shape, is_static, mul_dims, normalize_axes, normalize_axis

REDUCE_NUMERIC = ("int32", "int64", "uint32", "uint64") + dt.FLOATS
REDUCE_ORDERED = REDUCE_NUMERIC + ("int8", "uint8", "bool")


def reduce_axes(rank: int, axes: np.ndarray | None, noop_with_empty_axes: int) -> tuple[int, ...]:
    """The sorted, normalized axes a reduction runs over."""
    if axes is None or axes.size == 0:
        return () if noop_with_empty_axes else tuple(range(rank))
    return tuple(sorted(set(normalize_axes(axes.reshape(-1).tolist(), rank))))


def reduced_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    """``shape`` with ``axes`` set to 1 (keepdims) or dropped."""
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _accumulator(dtype: np.dtype) -> np.dtype:
    return np.dtype(np.float32) if dtype == np.float16 else dtype


class Reduce(OpDef):
    """A reduction over the ``axes`` input. Subclasses define
    ``reduce(data, axes, keepdims)``, which gets the normalized axes tuple."""

    inputs = (Param("data", "T"), Param("axes", "int64", optional=True))
    outputs = (Param("reduced", "T"),)
    attrs = {"keepdims": Attr("int", 1), "noop_with_empty_axes": Attr("int", 0)}
    constraints = {"T": REDUCE_NUMERIC}

    def infer(self, ctx: InferContext):
        (dtype,) = self.output_dtypes(ctx)
        if dtype is None:
            return [None]
        shape, keep = ctx.shape(0), bool(ctx.attrs["keepdims"])
        axes = ctx.value(1) if ctx.has(1) else np.zeros(0, np.int64)
        if axes is None:  # axes known only at run time
            return [TensorType(dtype, self._runtime_axes_shape(shape, ctx.shape(1), keep))]
        reduce_all = axes.size == 0 and not ctx.attrs["noop_with_empty_axes"]
        if shape is None:
            return [TensorType(dtype, () if reduce_all and not keep else None)]
        picked = reduce_axes(len(shape), axes, ctx.attrs["noop_with_empty_axes"])
        return [TensorType(dtype, reduced_shape(shape, picked, keep))]

    @staticmethod
    def _runtime_axes_shape(shape: Shape | None, axes_shape: Shape | None, keep: bool) -> Shape | None:
        """Unknown dims of the right rank where that rank is known."""
        if shape is None:
            return None
        if keep:
            return (None,) * len(shape)
        n_axes = axes_shape[0] if axes_shape is not None and len(axes_shape) == 1 else None
        if isinstance(n_axes, int) and 0 < n_axes <= len(shape):
            return (None,) * (len(shape) - n_axes)
        return None

    def reference(self, data, axes=None, *, keepdims, noop_with_empty_axes):
        picked = reduce_axes(data.ndim, axes, noop_with_empty_axes)
        with np.errstate(all="ignore"):
            return np.asarray(self.reduce(data, picked, bool(keepdims)))

    def emit(self, d: Decomposer, op: str, x: str, outputs: list[str] | int = 1, **attrs) -> str:
        """Emit reduction ``op`` on ``x`` with this node's axes input and attributes."""
        merged = {**d.attrs, **attrs}
        return d.op(op, x, *d.inputs[1:], outputs=outputs, keepdims=merged["keepdims"],
                    noop_with_empty_axes=merged["noop_with_empty_axes"])


def sum_reduce(data: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    acc = _accumulator(data.dtype)
    return np.add.reduce(data, axis=axes, dtype=acc, keepdims=keepdims).astype(data.dtype)


@register
class ReduceSum(Reduce):
    name = "ReduceSum"

    def reduce(self, data, axes, keepdims):
        return sum_reduce(data, axes, keepdims)


@register
class ReduceProd(Reduce):
    name = "ReduceProd"

    def reduce(self, data, axes, keepdims):
        acc = _accumulator(data.dtype)
        return np.multiply.reduce(data, axis=axes, dtype=acc, keepdims=keepdims).astype(data.dtype)


def lowest(dtype: np.dtype):
    """The identity of max: -inf, the smallest integer, or False."""
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def highest(dtype: np.dtype):
    """The identity of min: inf, the largest integer, or True."""
    if dtype.kind == "f":
        return np.inf
    return True if dtype.kind == "b" else np.iinfo(dtype).max


@register
class ReduceMax(Reduce):
    """nan wins; False < True for bool."""

    name = "ReduceMax"
    constraints = {"T": REDUCE_ORDERED}

    def reduce(self, data, axes, keepdims):
        return np.maximum.reduce(data, axis=axes, keepdims=keepdims, initial=lowest(data.dtype))


@register
class ReduceMin(Reduce):
    """nan wins; False < True for bool."""

    name = "ReduceMin"
    constraints = {"T": REDUCE_ORDERED}

    def reduce(self, data, axes, keepdims):
        return np.minimum.reduce(data, axis=axes, keepdims=keepdims, initial=highest(data.dtype))


@register
class ReduceMean(Reduce):
    """Sum over count, both in the data dtype: integer means truncate toward zero, an
    empty float mean is nan (an empty integer mean is undefined)."""

    name = "ReduceMean"
    composite = True

    def reduce(self, data, axes, keepdims):
        total = sum_reduce(data, axes, keepdims)
        count = np.asarray(int(np.prod([data.shape[a] for a in axes])), data.dtype)
        if data.dtype.kind in "iu":
            return trunc_divide(total, count)
        return np.divide(total, count)

    def decompose(self, d):
        total = self.emit(d, "ReduceSum", d.inputs[0])
        d.op("Div", total, element_count(self, d), outputs=d.outputs)


def element_count(reduce: Reduce, d: Decomposer) -> str:
    """The number of reduced elements, in the data dtype: a constant when the shape and
    axes are known, else a ReduceSum of ones (``Not(x < x)`` is true everywhere)."""
    dtype, shape = d.dtype(0), d.types[0].shape
    axes = d.value(1) if len(d.inputs) > 1 and d.inputs[1] else np.zeros(0, np.int64)
    if is_static(shape) and axes is not None:
        picked = reduce_axes(len(shape), axes, d.attrs["noop_with_empty_axes"])
        return d.const(mul_dims([shape[a] for a in picked]), dtype)
    x = d.inputs[0]
    ones = d.op("Cast", d.op("Not", d.op("Less", x, x)), to=dt.onnx_code(dtype))
    return reduce.emit(d, "ReduceSum", ones)


@register
class ReduceL1(Reduce):
    name = "ReduceL1"
    composite = True

    def reduce(self, data, axes, keepdims):
        return sum_reduce(np.abs(data), axes, keepdims)

    def decompose(self, d):
        self.emit(d, "ReduceSum", d.op("Abs", d.inputs[0]), d.outputs)


@register
class ReduceSumSquare(Reduce):
    name = "ReduceSumSquare"
    composite = True

    def reduce(self, data, axes, keepdims):
        return sum_reduce(np.multiply(data, data), axes, keepdims)

    def decompose(self, d):
        x = d.inputs[0]
        self.emit(d, "ReduceSum", d.op("Mul", x, x), d.outputs)


@register
class ReduceL2(Reduce):
    """``sqrt(sum(x * x))``; for integers the root is taken in float64 and truncated."""

    name = "ReduceL2"
    composite = True

    def reduce(self, data, axes, keepdims):
        total = sum_reduce(np.multiply(data, data), axes, keepdims)
        if data.dtype.kind == "f":
            return np.sqrt(total)
        return np.sqrt(total.astype(np.float64)).astype(data.dtype)

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        total = self.emit(d, "ReduceSum", d.op("Mul", x, x))
        if np.dtype(dtype).kind == "f":
            d.op("Sqrt", total, outputs=d.outputs)
            return
        root = d.op("Sqrt", d.op("Cast", total, to=dt.onnx_code("float64")))
        d.op("Cast", root, outputs=d.outputs, to=dt.onnx_code(dtype))


@register
class ReduceLogSum(Reduce):
    name = "ReduceLogSum"
    constraints = {"T": dt.FLOATS}
    composite = True

    def reduce(self, data, axes, keepdims):
        return np.log(sum_reduce(data, axes, keepdims))

    def decompose(self, d):
        d.op("Log", self.emit(d, "ReduceSum", d.inputs[0]), outputs=d.outputs)


@register
class ReduceLogSumExp(Reduce):
    """``log(sum(exp(x)))`` evaluated stably as ``m + log(sum(exp(x - m)))`` with ``m`` the
    finite maximum (0 when the maximum is infinite or the set empty)."""

    name = "ReduceLogSumExp"
    constraints = {"T": dt.FLOATS}
    composite = True

    def reduce(self, data, axes, keepdims):
        m = np.maximum.reduce(data, axis=axes, keepdims=True, initial=-np.inf)
        m = np.where(np.isinf(m), np.zeros((), data.dtype), m)
        y = np.log(sum_reduce(np.exp(data - m), axes, keepdims=True)) + m
        return y if keepdims else np.squeeze(y, axis=axes)

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        m = self.emit(d, "ReduceMax", x, keepdims=1)
        finite = d.op("Less", d.op("Abs", m), d.const(np.inf, dtype))
        m = d.op("Where", finite, m, d.const(0, dtype))
        log_sum = d.op("Log", self.emit(d, "ReduceSum", d.op("Exp", d.op("Sub", x, m))))
        if not d.attrs["keepdims"]:
            m = self.emit(d, "ReduceMax", m)  # drops the kept axes
        d.op("Add", log_sum, m, outputs=d.outputs)


# -- index-valued reductions ---------------------------------------------------
class ArgReduce(OpDef):
    """Index of the extreme value along ``axis``: the first one, or the last with
    ``select_last_index``. ``pick`` is numpy's argmax or argmin."""

    inputs = (Param("data", "T"),)
    outputs = (Param("reduced", "int64"),)
    attrs = {"axis": Attr("int", 0), "keepdims": Attr("int", 1), "select_last_index": Attr("int", 0)}
    constraints = {"T": dt.NUMERIC}

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is None:
            return [TensorType("int64")]
        axis = normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
        return [TensorType("int64", reduced_shape(shape, (axis,), bool(ctx.attrs["keepdims"])))]

    def reference(self, data, *, axis, keepdims, select_last_index):
        axis = normalize_axis(axis, data.ndim)
        if select_last_index:
            index = data.shape[axis] - 1 - self.pick(np.flip(data, axis), axis=axis)
        else:
            index = self.pick(data, axis=axis)
        index = np.asarray(index, np.int64)
        return np.expand_dims(index, axis) if keepdims else index


@register
class ArgMax(ArgReduce):
    name = "ArgMax"
    pick = staticmethod(np.argmax)


@register
class ArgMin(ArgReduce):
    name = "ArgMin"
    pick = staticmethod(np.argmin)


class _Cumulative(OpDef):
    """A running ``ufunc`` along the 0-d ``axis`` input; ``exclusive`` shifts in the
    identity first, ``reverse`` runs from the end. Integer results wrap."""

    inputs = (Param("x", "T"), Param("axis", "T2"))
    outputs = (Param("y", "T"),)
    attrs = {"exclusive": Attr("int", 0), "reverse": Attr("int", 0)}
    constraints = {"T": REDUCE_NUMERIC, "T2": dt.INDEX}
    ufunc: np.ufunc

    def infer(self, ctx: InferContext):
        return [ctx.types[0]]

    def reference(self, x, axis, *, exclusive, reverse):
        ax = normalize_axis(int(axis.reshape(-1)[0]), x.ndim)
        y = np.flip(x, ax) if reverse else x
        with np.errstate(all="ignore"):
            out = self.ufunc.accumulate(y, axis=ax, dtype=x.dtype)
        if exclusive:
            shifted = np.full_like(out, self.ufunc.identity)
            src = [slice(None)] * x.ndim
            dst = [slice(None)] * x.ndim
            src[ax], dst[ax] = slice(None, -1), slice(1, None)
            shifted[tuple(dst)] = out[tuple(src)]
            out = shifted
        return np.flip(out, ax) if reverse else out


@register
class CumSum(_Cumulative):
    """Running sum; the exclusive form starts at 0."""

    name = "CumSum"
    ufunc = np.add


@register
class CumProd(_Cumulative):
    """Running product; the exclusive form starts at 1."""

    name = "CumProd"
    ufunc = np.multiply


def sort_order(x: np.ndarray, axis: int, largest: bool) -> np.ndarray:
    """Indices sorting ``x`` along ``axis`` (descending when ``largest``), equal values in
    increasing index order."""
    if not largest:
        return np.argsort(x, axis=axis, kind="stable")
    backwards = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    return x.shape[axis] - 1 - np.flip(backwards, axis)


@register
class TopK(OpDef):
    """The K largest (or smallest) values along ``axis`` and their indices; ties go to the
    lower index. The reference always sorts (``sorted=0`` leaves the order undefined)."""

    name = "TopK"
    inputs = (Param("X", "T"), Param("K", "int64"))
    outputs = (Param("Values", "T"), Param("Indices", "I"))
    attrs = {"axis": Attr("int", -1), "largest": Attr("int", 1), "sorted": Attr("int", 1)}
    constraints = {"T": dt.NUMERIC, "I": ("int64",)}

    def infer(self, ctx: InferContext):
        dtype, shape = ctx.dtype(0), ctx.shape(0)
        if shape is not None:
            axis = normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
            k = ctx.value(1)
            shape = tuple(shape)
            shape = shape[:axis] + (None if k is None else int(k.reshape(-1)[0]),) + shape[axis + 1:]
        return [None if dtype is None else TensorType(dtype, shape), TensorType("int64", shape)]

    def reference(self, x, k, *, axis, largest, sorted):  # ONNX names the attribute "sorted"
        axis = normalize_axis(axis, x.ndim)
        index = np.take(sort_order(x, axis, bool(largest)), np.arange(int(k.reshape(-1)[0])), axis=axis)
        return np.take_along_axis(x, index, axis=axis), index.astype(np.int64)
