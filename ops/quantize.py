"""Quantization ops: QuantizeLinear, DequantizeLinear, integer matmul and convolution.

Quantizing divides, rounds half to even, adds the zero point and saturates to the
quantized type's range. Integer products accumulate in int32 as ONNX specifies.
"""
from __future__ import annotations

from collections.abc import Sequence

import ml_dtypes
import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from . import casting
from .base import Attr, InferContext, OpDef, Param
from .conv import Conv
from .linalg import matmul_shape
from .registry import register
from .shapes import normalize_axis

QUANTIZED = ("int8", "uint8", "int16", "uint16")
LOW_BIT = dt.FLOAT8 + dt.INT4 + dt.FLOAT4 + dt.INT2
"""Quantized types of QuantizeLinear/DequantizeLinear beyond the 8- and 16-bit integers."""
BYTES = ("int8", "uint8")
SCALES = ("float32", "float16")


def expand_param(value: np.ndarray, shape: Sequence[int], axis: int, block_size: int) -> np.ndarray:
    """A scale or zero point, broadcastable to ``shape``: a scalar (per tensor), a 1-D
    tensor along ``axis`` (per axis), or with ``block_size`` a tensor of the input's
    rank whose ``axis`` holds one entry per block. A 1-D tensor of one entry applies to
    the whole tensor as a scalar does."""
    if value.ndim == 0 or len(shape) == 0 or (block_size <= 0 and value.shape == (1,)):
        return value.reshape(())
    axis = normalize_axis(axis, len(shape))
    if block_size > 0:
        if value.ndim != len(shape):
            raise ShapeError(f"blocked quantization needs a scale of rank {len(shape)}, got {list(value.shape)}")
        repeated = np.repeat(value, block_size, axis=axis)
        return np.take(repeated, np.arange(shape[axis]), axis=axis)
    if value.ndim != 1:
        raise ShapeError(f"per-axis quantization needs a 1-D scale, got {list(value.shape)}")
    dims = [1] * len(shape)
    dims[axis] = value.shape[0]
    return value.reshape(dims)


def int_range(dtype: str) -> tuple[int, int]:
    """(min, max) of an integer dtype, the 4- and 2-bit ones included."""
    info = ml_dtypes.iinfo(dt.to_numpy(dtype))
    return int(info.min), int(info.max)


def round_saturate(values: np.ndarray, dtype: str) -> np.ndarray:
    """Round half to even, clip to the range of the integer dtype and cast."""
    info = np.iinfo(dtype)
    return np.clip(np.rint(values), info.min, info.max).astype(dtype)


def requantize(acc: np.ndarray, multiplier: np.ndarray, zero_point: np.ndarray) -> np.ndarray:
    """``saturate(acc * multiplier + zero_point)`` in the zero point's dtype, evaluated in
    float64 from an int32 accumulator and a multiplier in the scales' dtype."""
    scaled = acc.astype(np.float64) * multiplier.astype(np.float64) + zero_point.astype(np.float64)
    return round_saturate(scaled, zero_point.dtype.name)


def _minus_zero_point(x: np.ndarray, zero_point: np.ndarray | None, row_axis: int | None = None) -> np.ndarray:
    """``x - zero_point`` in int32; a 1-D zero point runs along ``row_axis`` when given."""
    x32 = x.astype(np.int32)
    if zero_point is None:
        return x32
    zp = zero_point.astype(np.int32)
    if row_axis is not None and zp.ndim == 1 and zp.size > 1:
        dims = [1] * x.ndim
        dims[row_axis] = zp.size
        zp = zp.reshape(dims)
    return x32 - zp


@register
class QuantizeLinear(OpDef):
    """``y = saturate(round(x / y_scale) + y_zero_point)``; the division runs in the
    dtype of y_scale, or in ``precision`` when given. The output dtype is that of
    y_zero_point, else ``output_dtype``, else uint8. Float8 and float4 outputs are
    ``Cast(x / y_scale + y_zero_point)`` with the ``saturate`` of Cast (which only
    concerns float8)."""

    name = "QuantizeLinear"
    inputs = (Param("x", "T1"), Param("y_scale", "T2"), Param("y_zero_point", "T3", optional=True))
    outputs = (Param("y", "T3"),)
    attrs = {"axis": Attr("int", 1), "block_size": Attr("int", 0), "output_dtype": Attr("int", 0),
             "precision": Attr("int", 0), "saturate": Attr("int", 1)}
    constraints = {"T1": ("float32", "float16", "int32"), "T2": ("float32", "float16", "int32"),
                   "T3": QUANTIZED + LOW_BIT}

    def infer(self, ctx: InferContext):
        if ctx.has(2):
            dtype = ctx.dtype(2)
        elif ctx.attrs.get("output_dtype"):
            dtype = dt.from_onnx(ctx.attrs["output_dtype"])
        else:
            dtype = "uint8"
        return [None if dtype is None else TensorType(dtype, ctx.shape(0))]

    def reference(self, x, y_scale, y_zero_point=None, *, axis, block_size, output_dtype, precision,
                  saturate: int):
        dtype = dt.name_of(y_zero_point.dtype) if y_zero_point is not None else (
            dt.from_onnx(output_dtype) if output_dtype else "uint8")
        work = dt.from_onnx(precision) if precision else y_scale.dtype.name
        scale = expand_param(y_scale, x.shape, axis, block_size).astype(work)
        zero_point = None if y_zero_point is None else expand_param(
            casting.widen(y_zero_point), x.shape, axis, block_size)
        with np.errstate(all="ignore"):
            ratio = x.astype(work) / scale
            if dtype in dt.FLOAT8 + dt.FLOAT4:
                if zero_point is not None:
                    ratio = ratio + zero_point.astype(work)
                return casting.cast(np.asarray(ratio), dtype, saturate)
            ratio = np.rint(ratio).astype(np.float64)
        if zero_point is not None:
            ratio = ratio + zero_point.astype(np.float64)
        low, high = int_range(dtype)
        return casting.cast(np.clip(ratio, low, high).astype(np.int64), dtype)


@register
class DequantizeLinear(OpDef):
    """``y = (x - x_zero_point) * x_scale`` in the output dtype (``output_dtype``, else
    that of x_scale), rounded once from the exact product."""

    name = "DequantizeLinear"
    inputs = (Param("x", "T1"), Param("x_scale", "T2"), Param("x_zero_point", "T1", optional=True))
    outputs = (Param("y", "T3"),)
    attrs = {"axis": Attr("int", 1), "block_size": Attr("int", 0), "output_dtype": Attr("int", 0)}
    constraints = {"T1": QUANTIZED + ("int32",) + LOW_BIT, "T2": SCALES, "T3": SCALES}

    def infer(self, ctx: InferContext):
        dtype = dt.from_onnx(ctx.attrs["output_dtype"]) if ctx.attrs.get("output_dtype") else ctx.dtype(1)
        return [None if dtype is None else TensorType(dtype, ctx.shape(0))]

    def reference(self, x, x_scale, x_zero_point=None, *, axis, block_size, output_dtype):
        dtype = dt.from_onnx(output_dtype) if output_dtype else x_scale.dtype.name
        diff = casting.widen(x).astype(np.float64)
        if x_zero_point is not None:
            diff = diff - expand_param(casting.widen(x_zero_point), x.shape, axis, block_size).astype(np.float64)
        scale = expand_param(x_scale, x.shape, axis, block_size).astype(np.float64)
        return np.asarray((diff * scale).astype(dtype))


@register
class DynamicQuantizeLinear(OpDef):
    """Quantize float32 to uint8 with a scale and zero point computed from the data's
    range, widened to include 0: ``scale = (max - min) / 255`` (1/255 when the range is
    empty), ``zero_point = saturate(round(-min / scale))``."""

    name = "DynamicQuantizeLinear"
    inputs = (Param("x", "T1"),)
    outputs = (Param("y", "T2"), Param("y_scale", "float32"), Param("y_zero_point", "T2"))
    constraints = {"T1": ("float32",), "T2": ("uint8",)}

    def infer(self, ctx: InferContext):
        return [TensorType("uint8", ctx.shape(0)), TensorType("float32", ()), TensorType("uint8", ())]

    def reference(self, x):
        hi = np.float32(max(0.0, float(x.max()))) if x.size else np.float32(0)
        lo = np.float32(min(0.0, float(x.min()))) if x.size else np.float32(0)
        scale = np.float32((hi - lo) if hi != lo else np.float32(1)) / np.float32(255)
        zero_point = np.rint(np.clip(np.float32(0) - lo / scale, 0, 255))
        y = np.clip(np.rint(x / scale) + zero_point, 0, 255).astype(np.uint8)
        return y, np.asarray(scale, np.float32), np.asarray(zero_point.astype(np.uint8))


@register
class MatMulInteger(OpDef):
    """``(A - a_zero_point) @ (B - b_zero_point)`` accumulated in int32; a 1-D
    a_zero_point is per row of A, a 1-D b_zero_point per column of B."""

    name = "MatMulInteger"
    inputs = (Param("A", "T1"), Param("B", "T2"), Param("a_zero_point", "T1", optional=True),
              Param("b_zero_point", "T2", optional=True))
    outputs = (Param("Y", "T3"),)
    constraints = {"T1": BYTES, "T2": BYTES, "T3": ("int32",)}

    def infer(self, ctx: InferContext):
        return [TensorType("int32", matmul_shape(ctx.shape(0), ctx.shape(1), ctx.node.name))]

    def reference(self, a, b, a_zero_point=None, b_zero_point=None):
        a32 = _minus_zero_point(a, a_zero_point, row_axis=a.ndim - 2 if a.ndim >= 2 else None)
        b32 = _minus_zero_point(b, b_zero_point)
        return np.asarray(np.matmul(a32, b32), np.int32)


@register
class QLinearMatMul(OpDef):
    """MatMulInteger of the zero-point-shifted inputs, requantized with
    ``a_scale * b_scale / y_scale`` (in the scales' dtype) and y_zero_point."""

    name = "QLinearMatMul"
    inputs = (Param("a", "T1"), Param("a_scale", "TS"), Param("a_zero_point", "T1"), Param("b", "T2"),
              Param("b_scale", "TS"), Param("b_zero_point", "T2"), Param("y_scale", "TS"),
              Param("y_zero_point", "T3"))
    outputs = (Param("y", "T3"),)
    constraints = {"TS": SCALES, "T1": BYTES, "T2": BYTES, "T3": BYTES}

    def infer(self, ctx: InferContext):
        dtype = ctx.dtype(7)
        shape = matmul_shape(ctx.shape(0), ctx.shape(3), ctx.node.name)
        return [None if dtype is None else TensorType(dtype, shape)]

    def reference(self, a, a_scale, a_zero_point, b, b_scale, b_zero_point, y_scale, y_zero_point):
        row = a.ndim - 2 if a.ndim >= 2 else None
        acc = np.matmul(_minus_zero_point(a, a_zero_point, row), _minus_zero_point(b, b_zero_point))
        if row is not None and a_scale.ndim == 1 and a_scale.size > 1:
            a_scale = a_scale.reshape(-1, 1)
        multiplier = a_scale * b_scale / y_scale
        return requantize(np.asarray(acc, np.int32), multiplier, y_zero_point)


def _conv_attrs(attrs: dict) -> dict:
    return {k: attrs[k] for k in ("auto_pad", "dilations", "group", "kernel_shape", "pads", "strides")}


def _weights_minus_zero_point(w: np.ndarray, zero_point: np.ndarray | None) -> np.ndarray:
    """``w - zero_point`` in int32; a 1-D zero point is per output channel."""
    return _minus_zero_point(w, zero_point, row_axis=0)


def _conv_int32(x32: np.ndarray, w32: np.ndarray, attrs: dict) -> np.ndarray:
    """Conv of int32 tensors, accumulated in int32 (Conv's reference keeps the dtype)."""
    return Conv.reference(Conv(), x32, w32, None, **_conv_attrs(attrs))


@register
class ConvInteger(Conv):
    """Conv of ``x - x_zero_point`` and ``w - w_zero_point`` accumulated in int32 (padding
    therefore contributes zero); a 1-D w_zero_point is per output channel."""

    name = "ConvInteger"
    inputs = (Param("x", "T1"), Param("w", "T2"), Param("x_zero_point", "T1", optional=True),
              Param("w_zero_point", "T2", optional=True))
    outputs = (Param("y", "T3"),)
    constraints = {"T1": BYTES, "T2": BYTES, "T3": ("int32",)}

    def reference(self, x, w, x_zero_point=None, w_zero_point=None, **attrs):
        x32 = _minus_zero_point(x, x_zero_point)
        return _conv_int32(x32, _weights_minus_zero_point(w, w_zero_point), attrs)


@register
class QLinearConv(Conv):
    """ConvInteger plus the int32 bias B, requantized with ``x_scale * w_scale / y_scale``
    (w_scale per output channel when 1-D) and y_zero_point."""

    name = "QLinearConv"
    inputs = (Param("x", "T1"), Param("x_scale", "float32"), Param("x_zero_point", "T1"), Param("w", "T2"),
              Param("w_scale", "float32"), Param("w_zero_point", "T2"), Param("y_scale", "float32"),
              Param("y_zero_point", "T3"), Param("B", "T4", optional=True))
    outputs = (Param("y", "T3"),)
    constraints = {"T1": BYTES, "T2": BYTES, "T3": BYTES, "T4": ("int32",)}

    def infer(self, ctx: InferContext):
        dtype = ctx.dtype(7)
        x, w = ctx.shape(0), ctx.shape(3)
        if dtype is None or x is None:
            return [None if dtype is None else TensorType(dtype, None)]
        m = w[0] if w is not None else None
        kernel = [int(k) for k in ctx.attrs["kernel_shape"]] if ctx.attrs.get("kernel_shape") else (
            list(w[2:]) if w is not None else None)
        if kernel is None or not all(isinstance(d, int) for d in list(x[2:]) + kernel):
            return [TensorType(dtype, (x[0], m) + (None,) * (len(x) - 2))]
        out, _ = self._geometry(list(x[2:]), kernel, ctx.attrs)
        return [TensorType(dtype, (x[0], m) + tuple(out))]

    def reference(self, x, x_scale, x_zero_point, w, w_scale, w_zero_point, y_scale, y_zero_point, B=None,
                  **attrs):
        acc = _conv_int32(_minus_zero_point(x, x_zero_point), _weights_minus_zero_point(w, w_zero_point), attrs)
        spatial = [1] * (acc.ndim - 2)
        if B is not None:
            acc = acc + B.astype(np.int32).reshape(-1, *spatial)
        if w_scale.ndim == 1 and w_scale.size > 1:
            w_scale = w_scale.reshape(-1, *spatial)
        return requantize(acc, x_scale * w_scale / y_scale, y_zero_point)
