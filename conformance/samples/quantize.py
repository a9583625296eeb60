"""Samples for the quantize ops.

Values are finite: ONNX leaves the quantization of nan and inf undefined. Scales are
positive and keep ``x / scale`` well inside int32."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dh_core import dtypes as dt

from . import Sample, samples
from .conv import _geometry, _geometry_attrs, _sizes
from .strategies import arrays, shapes

QUANTIZED = ("int8", "uint8", "int16", "uint16")
LOW_BIT = dt.FLOAT8 + dt.INT4 + dt.FLOAT4 + dt.INT2
BYTES = ("int8", "uint8")
SCALES = ("float32", "float16")
POWERS_OF_TWO = [2.0 ** k for k in range(-4, 5)]


def scale_arrays(dtype: str, shape, lo: float = 2 ** -7, hi: float = 8.0):
    """Positive scales; for float16 drawn as float16 values."""
    return arrays(dtype, shape, special=False, min_value=lo, max_value=hi)


def zero_points(dtype: str, shape):
    """Zero points: zeros for float8 and float4, as ONNX uses them (onnx.reference
    ignores or rejects others of those types), any value of the integer types."""
    if dtype in dt.FLOAT8 + dt.FLOAT4:
        return st.just(np.zeros(shape, dt.to_numpy(dtype)))
    return arrays(dtype, shape, special=False)


@st.composite
def granularity(draw, x_shape: tuple[int, ...]):
    """(param shape, attrs) for per-tensor, per-axis or blocked quantization of x."""
    rank = len(x_shape)
    modes = ["tensor"] + (["axis"] if rank else []) + (["block"] if rank and max(x_shape) else [])
    mode = draw(st.sampled_from(modes))
    if mode == "tensor":
        return (), {}
    axis = draw(st.sampled_from([a for a in range(-rank, rank) if mode == "axis" or x_shape[a]]))
    attrs = {"axis": axis} if axis != 1 or draw(st.booleans()) else {}
    if mode == "axis":
        return (x_shape[axis],), attrs
    size = x_shape[axis]
    block = draw(st.integers(1, size + 1))
    param_shape = list(x_shape)
    param_shape[axis] = math.ceil(size / block)
    return tuple(param_shape), {**attrs, "block_size": block}


@samples("QuantizeLinear", ("float32", "float16", "int32"))
def quantize_linear(dtype):
    """Float inputs take a scale of their dtype and sometimes a float32 ``precision``;
    int32 inputs take power-of-two float32 scales (an exact division)."""

    @st.composite
    def draw(draw_):
        x_shape = draw_(shapes())
        if dtype == "int32":
            x = draw_(arrays(dtype, x_shape, min_value=-2 ** 20, max_value=2 ** 20))
        else:
            x = draw_(arrays(dtype, x_shape, special=False))
        param_shape, attrs = draw_(granularity(x_shape))
        if dtype == "int32":
            scale = draw_(hnp.arrays(np.float32, param_shape, elements=st.sampled_from(POWERS_OF_TWO)))
        else:
            scale = draw_(scale_arrays(dtype, param_shape))
            if draw_(st.booleans()):
                attrs["precision"] = dt.onnx_code("float32")
        out = draw_(st.sampled_from(QUANTIZED + LOW_BIT))
        if out in dt.FLOAT8 and draw_(st.booleans()):
            attrs["saturate"] = draw_(st.integers(0, 1))
        if draw_(st.booleans()):
            return Sample([x, scale, draw_(zero_points(out, param_shape))], attrs)
        if out != "uint8" or draw_(st.booleans()):
            attrs["output_dtype"] = dt.onnx_code(out)
        return Sample([x, scale], attrs)

    return draw()


@samples("DequantizeLinear", QUANTIZED + ("int32",) + LOW_BIT, {"float16": (1e-3, 0.0)})
def dequantize_linear(dtype):
    """int32 inputs have no zero point, as ONNX specifies."""

    @st.composite
    def draw(draw_):
        x_shape = draw_(shapes())
        x = draw_(arrays(dtype, x_shape, min_value=-2 ** 20, max_value=2 ** 20))
        param_shape, attrs = draw_(granularity(x_shape))
        scale_dtype = draw_(st.sampled_from(SCALES))
        scale = draw_(scale_arrays(scale_dtype, param_shape, 2 ** -10, 2.0))
        if draw_(st.booleans()):
            attrs["output_dtype"] = dt.onnx_code(draw_(st.sampled_from(SCALES)))
        if dtype != "int32" and draw_(st.booleans()):
            return Sample([x, scale, draw_(zero_points(dtype, param_shape))], attrs)
        return Sample([x, scale], attrs)

    return draw()


@samples("DynamicQuantizeLinear", ("float32",))
def dynamic_quantize_linear(dtype):
    """Non-empty inputs (the range of no values is undefined)."""
    return arrays(dtype, shapes(min_side=1), special=False).map(lambda x: Sample([x]))


def _matmul_shapes():
    return hnp.mutually_broadcastable_shapes(
        signature="(m?,n),(n,p?)->(m?,p?)", max_dims=4, min_side=0, max_side=4).map(lambda r: r.input_shapes)


def _zero_point(draw, dtype: str, n_cols: int | None):
    """A scalar zero point, or per column when ``n_cols`` is given."""
    shape = (n_cols,) if n_cols is not None and draw(st.booleans()) else ()
    return draw(arrays(dtype, shape))


@samples("MatMulInteger", BYTES)
def matmul_integer(dtype):
    """Zero points optional: A's per tensor, B's per tensor or per column."""

    @st.composite
    def draw(draw_):
        sa, sb = draw_(_matmul_shapes())
        b_dtype = draw_(st.sampled_from(BYTES))
        a, b = draw_(arrays(dtype, sa)), draw_(arrays(b_dtype, sb))
        a_zp = draw_(arrays(dtype, ())) if draw_(st.booleans()) else None
        b_zp = _zero_point(draw_, b_dtype, sb[-1] if len(sb) >= 2 else None) if draw_(st.booleans()) else None
        inputs = [a, b, a_zp, b_zp]
        while inputs[-1] is None:
            inputs.pop()
        return Sample(inputs)

    return draw()


@samples("QLinearMatMul", BYTES)
def qlinear_matmul(dtype):
    """Scalar scales and zero points, in either scale dtype."""

    @st.composite
    def draw(draw_):
        sa, sb = draw_(_matmul_shapes())
        b_dtype, y_dtype = draw_(st.sampled_from(BYTES)), draw_(st.sampled_from(BYTES))
        ts = draw_(st.sampled_from(SCALES))
        return Sample([draw_(arrays(dtype, sa)), draw_(scale_arrays(ts, (), 2 ** -10, 2 ** -3)),
                       draw_(arrays(dtype, ())), draw_(arrays(b_dtype, sb)),
                       draw_(scale_arrays(ts, (), 2 ** -10, 2 ** -3)), draw_(arrays(b_dtype, ())),
                       draw_(scale_arrays(ts, (), 2 ** -10, 2 ** -3)), draw_(arrays(y_dtype, ()))])

    return draw()


@st.composite
def _conv_case(draw, dtype: str):
    """(x, w, attrs, output channels) for an integer convolution."""
    kernel, strides, dilations, pads = draw(_geometry())
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    sizes = _sizes(draw, kernel, dilations, pads, auto_pad, 7 if len(kernel) < 3 else 4)
    group = draw(st.integers(1, 2))
    c = group * draw(st.integers(1, 2))
    m = group * draw(st.integers(1, 2))
    x = draw(arrays(dtype, (draw(st.integers(1, 2)), c, *sizes)))
    w = draw(arrays(draw(st.sampled_from(BYTES)), (m, c // group, *kernel)))
    attrs = _geometry_attrs(draw, kernel, strides, dilations, pads, auto_pad)
    if group != 1 or draw(st.booleans()):
        attrs["group"] = group
    return x, w, attrs, m


@samples("ConvInteger", BYTES)
def conv_integer(dtype):
    """Zero points optional; W's per tensor or per output channel."""

    @st.composite
    def draw(draw_):
        x, w, attrs, m = draw_(_conv_case(dtype))
        x_zp = draw_(arrays(x.dtype.name, ())) if draw_(st.booleans()) else None
        w_zp = _zero_point(draw_, w.dtype.name, m) if draw_(st.booleans()) else None
        inputs = [x, w, x_zp, w_zp]
        while inputs[-1] is None:
            inputs.pop()
        return Sample(inputs, attrs)

    return draw()


@samples("QLinearConv", BYTES)
def qlinear_conv(dtype):
    """W's scale and zero point per tensor or per output channel; optional int32 bias."""

    @st.composite
    def draw(draw_):
        x, w, attrs, m = draw_(_conv_case(dtype))
        per_channel = draw_(st.booleans())
        w_shape = (m,) if per_channel else ()
        y_dtype = draw_(st.sampled_from(BYTES))
        inputs = [x, draw_(scale_arrays("float32", (), 2 ** -10, 2 ** -3)), draw_(arrays(x.dtype.name, ())),
                  w, draw_(scale_arrays("float32", w_shape, 2 ** -10, 2 ** -3)), draw_(arrays(w.dtype.name, w_shape)),
                  draw_(scale_arrays("float32", (), 2 ** -10, 2 ** -3)), draw_(arrays(y_dtype, ()))]
        if draw_(st.booleans()):
            inputs.append(draw_(arrays("int32", (m,), min_value=-10_000, max_value=10_000)))
        return Sample(inputs, attrs)

    return draw()
