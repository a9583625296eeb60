"""Samples for the elementwise ops."""
from __future__ import annotations

import ml_dtypes
import numpy as np
from dh_core.ops import casting
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays, broadcast_shapes, elements, shapes

POW_BASES = ("int32", "int64") + dt.FLOATS
BOOL = ("bool",)


def unary(dtype, **element_kwargs):
    return arrays(dtype, shapes(), **element_kwargs).map(lambda x: Sample([x]))


def nary(dtype, n: int = 2, **element_kwargs):
    """``n`` inputs of one dtype with mutually broadcastable shapes."""

    @st.composite
    def draw(draw_):
        return Sample([draw_(arrays(dtype, s, **element_kwargs)) for s in draw_(broadcast_shapes(n))])

    return draw()


def binary(dtype, **element_kwargs):
    return nary(dtype, 2, **element_kwargs)


def variadic(dtype, **element_kwargs):
    """One to four broadcasting inputs."""
    return st.integers(1, 4).flatmap(lambda n: nary(dtype, n, **element_kwargs))


def float_attr(lo: float, hi: float):
    """A float attribute value, exactly representable as ONNX's float32."""
    return st.floats(lo, hi, width=32)


def with_attrs(base, **attr_strategies):
    """Samples of ``base`` with attributes drawn from ``attr_strategies``."""
    return st.tuples(base, st.fixed_dictionaries(attr_strategies)).map(
        lambda sa: Sample(sa[0].inputs, sa[1]))


# -- arithmetic ----------------------------------------------------------------
samples("Add", dt.NUMERIC)(binary)
samples("Sub", dt.NUMERIC)(binary)
samples("Mul", dt.NUMERIC)(binary)


@samples("Div", dt.NUMERIC)
def div(dtype):
    """Integer divisors are nonzero and the dividend avoids INT_MIN (INT_MIN / -1
    overflows): both are undefined in ONNX."""
    if np.dtype(dtype).kind not in "iu":
        return binary(dtype)
    info = np.iinfo(dtype)

    @st.composite
    def draw(draw_):
        sa, sb = draw_(broadcast_shapes(2))
        a = draw_(arrays(dtype, sa, min_value=info.min + 1 if info.min else 0))
        b = draw_(hnp.arrays(np.dtype(dtype), sb, elements=elements(dtype).filter(bool)))
        return Sample([a, b])

    return draw()


@samples("Pow", POW_BASES)
def pow_(dtype):
    """Any exponent dtype (T1). An integer base gets a non-negative exponent in a range
    where the result fits (a float exponent of an integer base is evaluated in float
    and truncated: only finite in-range results are defined)."""
    base_is_int = np.dtype(dtype).kind == "i"

    @st.composite
    def draw(draw_):
        exp_dtype = draw_(st.sampled_from(dt.NUMERIC))
        sa, sb = draw_(broadcast_shapes(2))
        exp_is_int = np.dtype(exp_dtype).kind in "iu"
        if base_is_int:
            base = draw_(arrays(dtype, sa, min_value=-10 if exp_is_int else 0, max_value=10))
            expo = draw_(arrays(exp_dtype, sb, special=False, min_value=0, max_value=4))
        else:
            base = draw_(arrays(dtype, sa, min_value=-10, max_value=10))
            expo = draw_(arrays(exp_dtype, sb, min_value=-4, max_value=4))
        return Sample([base, expo])

    return draw()


samples("Neg", dt.SIGNED_NUMERIC)(unary)
samples("Abs", dt.NUMERIC)(unary)
samples("Sign", dt.NUMERIC)(unary)
samples("Reciprocal", dt.FLOATS)(unary)

# -- math functions ------------------------------------------------------------
samples("Exp", dt.FLOATS)(lambda dtype: unary(dtype, min_value=-20, max_value=20))
samples("Log", dt.FLOATS)(unary)
samples("Sqrt", dt.FLOATS)(unary)
samples("Sin", dt.FLOATS)(unary)
samples("Cos", dt.FLOATS)(unary)
samples("Tanh", dt.FLOATS)(unary)
samples("Erf", dt.FLOATS)(lambda dtype: unary(dtype, min_value=-5, max_value=5))
samples("Floor", dt.FLOATS)(unary)
samples("Ceil", dt.FLOATS)(unary)


@samples("Round", dt.FLOATS)
def round_(dtype):
    """Values include exact halves, where half-to-even matters."""
    halves = st.integers(-20, 20).map(lambda k: k / 2)
    values = st.one_of(elements(dtype), halves)
    return hnp.arrays(np.dtype(dtype), shapes(), elements=values).map(lambda x: Sample([x]))


# -- activations ---------------------------------------------------------------
samples("Relu", dt.SIGNED_NUMERIC)(unary)
samples("Sigmoid", dt.FLOATS)(unary)
samples("Softplus", dt.FLOATS)(unary)
samples("HardSwish", dt.FLOATS)(unary)
samples("LeakyRelu", dt.FLOATS)(lambda dtype: with_attrs(unary(dtype), alpha=float_attr(-2, 2)))
samples("Elu", dt.FLOATS)(lambda dtype: with_attrs(unary(dtype), alpha=float_attr(-2, 2)))
samples("Selu", dt.FLOATS)(lambda dtype: with_attrs(
    unary(dtype), alpha=float_attr(0, 3), gamma=float_attr(0, 3)))
samples("HardSigmoid", dt.FLOATS)(lambda dtype: with_attrs(
    unary(dtype), alpha=float_attr(-2, 2), beta=float_attr(-2, 2)))
samples("Gelu", dt.FLOATS, {"float16": (2e-2, 2e-3)})(lambda dtype: with_attrs(
    unary(dtype, min_value=-10, max_value=10), approximate=st.sampled_from(["none", "tanh"])))


@samples("Clip", dt.NUMERIC)
def clip(dtype):
    """Bounds are optional finite scalars (nan bounds are undefined); min > max occurs."""
    bound = st.one_of(st.none(), arrays(dtype, (), special=False))
    return st.tuples(arrays(dtype, shapes()), bound, bound).map(lambda xs: Sample(list(xs)))


# -- variadic ------------------------------------------------------------------
samples("Min", dt.NUMERIC)(variadic)
samples("Max", dt.NUMERIC)(variadic)
samples("Sum", dt.FLOATS)(variadic)
samples("Mean", dt.FLOATS)(variadic)

# -- comparison and logic ------------------------------------------------------
samples("Equal", dt.ALL + dt.STRING)(binary)
samples("Less", dt.NUMERIC)(binary)
samples("Greater", dt.NUMERIC)(binary)
samples("LessOrEqual", dt.NUMERIC)(binary)
samples("GreaterOrEqual", dt.NUMERIC)(binary)
samples("Not", BOOL)(unary)
samples("And", BOOL)(binary)
samples("Or", BOOL)(binary)


@samples("Where", dt.ALL)
def where(dtype):
    @st.composite
    def draw(draw_):
        sc, sx, sy = draw_(broadcast_shapes(3))
        return Sample([draw_(arrays("bool", sc)), draw_(arrays(dtype, sx)), draw_(arrays(dtype, sy))])

    return draw()


samples("IsNaN", dt.FLOATS)(unary)
samples("IsInf", dt.FLOATS)(lambda dtype: with_attrs(
    unary(dtype), detect_negative=st.integers(0, 1), detect_positive=st.integers(0, 1)))
samples("Identity", dt.ALL + dt.STRING)(unary)


# -- casts ---------------------------------------------------------------------
FLOAT_TYPES = dt.FLOATS + dt.BFLOAT16 + dt.SMALL_FLOATS
INT_TYPES = dt.INTS + dt.INT4 + dt.INT2
CAST_TYPES = dt.ALL_TYPES + dt.STRING


def cast_targets(dtype: str) -> tuple[str, ...]:
    """The targets drawn for a source dtype: text only to and from numpy's own dtypes."""
    if dtype in dt.STRING:
        return dt.ALL + dt.STRING
    return dt.ALL_TYPES + (dt.STRING if dtype in dt.ALL else ())


def cast_source(dtype: str, target: str, shape):
    """Source values for a cast: float to int only from finite values whose truncation
    fits the target, float to float8e8m0 only from values >= 0 (anything else is
    undefined in ONNX); text to numbers only from numbers of the target's range written
    as text (also ``INF``, ``+INF``, ``-INF`` and ``NaN`` in any case for floats)."""
    if dtype in dt.STRING and target not in dt.STRING:
        return number_texts(target, shape)
    if dtype in FLOAT_TYPES and target in INT_TYPES:
        info = ml_dtypes.iinfo(dt.to_numpy(target))
        return arrays(dtype, shape, special=False, min_value=max(int(info.min), -1000),
                      max_value=min(int(info.max), 1000))
    if target == "float8e8m0":
        if dtype in FLOAT_TYPES:
            return arrays(dtype, shape, min_value=0.0).map(lambda x: np.where(np.isneginf(x), -x, x))
        if dtype in INT_TYPES:
            return arrays(dtype, shape, min_value=0)
    return arrays(dtype, shape)


def number_texts(dtype: str, shape):
    """Numbers of ``dtype`` (IR dtypes of numpy's own) as text."""
    special = st.sampled_from(["INF", "+INF", "-INF", "NaN", "inf", "-Inf", "nan"])
    value = elements(dtype).map(lambda v: str(np.asarray(v, dtype)))
    text = st.one_of(value, special) if dt.to_numpy(dtype).kind == "f" else value
    return hnp.arrays(object, shape, elements=text)


def cast_attrs(draw_, target: str) -> dict:
    """saturate (float8 targets) and round_mode (float8e8m0), sometimes left default."""
    attrs = {}
    if target in dt.FLOAT8 + dt.FLOAT8E8M0 and draw_(st.booleans()):
        attrs["saturate"] = draw_(st.integers(0, 1))
    if target == "float8e8m0" and draw_(st.booleans()):
        attrs["round_mode"] = draw_(st.sampled_from(casting.ROUND_MODES))
    return attrs


@samples("Cast", CAST_TYPES)
def cast(dtype):
    @st.composite
    def draw(draw_):
        target = draw_(st.sampled_from(cast_targets(dtype)))
        x = draw_(cast_source(dtype, target, shapes()))
        return Sample([x], {"to": dt.onnx_code(target), **cast_attrs(draw_, target)})

    return draw()


@samples("CastLike", CAST_TYPES)
def cast_like(dtype):
    @st.composite
    def draw(draw_):
        target = draw_(st.sampled_from(cast_targets(dtype)))
        x = draw_(cast_source(dtype, target, shapes()))
        like = draw_(arrays(target, shapes(max_dims=2)))
        return Sample([x, like], cast_attrs(draw_, target))

    return draw()


@samples("BitCast", dt.ALL_TYPES)
def bitcast(dtype):
    """Targets of the same bit width; a bool target only from bytes 0 and 1."""
    width = casting.bit_width(dtype)

    @st.composite
    def draw(draw_):
        targets = [t for t in dt.ALL_TYPES if casting.bit_width(t) == width]
        target = draw_(st.sampled_from(targets))
        if target == "bool":
            x = draw_(hnp.arrays(np.uint8, shapes(), elements=st.integers(0, 1))).view(dt.to_numpy(dtype))
        else:
            x = draw_(arrays(dtype, shapes()))
        return Sample([x], {"to": dt.onnx_code(target)})

    return draw()


# -- trigonometric and hyperbolic ----------------------------------------------
for _op in ("Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh"):
    samples(_op, dt.FLOATS)(unary)


@samples("Mod", dt.NUMERIC)
def mod(dtype):
    """Floats take ``fmod=1`` (required by ONNX); integers either mode, with a nonzero
    divisor and no INT_MIN dividend (zero divisors and overflow are undefined)."""
    if np.dtype(dtype).kind == "f":
        return with_attrs(binary(dtype), fmod=st.just(1))
    info = np.iinfo(dtype)

    @st.composite
    def draw(draw_):
        sa, sb = draw_(broadcast_shapes(2))
        a = draw_(arrays(dtype, sa, min_value=info.min + 1 if info.min else 0))
        b = draw_(hnp.arrays(np.dtype(dtype), sb, elements=elements(dtype).filter(bool)))
        return Sample([a, b], {"fmod": draw_(st.integers(0, 1))})

    return draw()


# -- bitwise -------------------------------------------------------------------
@samples("BitShift", dt.INTS)
def bit_shift(dtype):
    """Shift amounts around the bit width, negative ones for signed types."""
    bits = np.dtype(dtype).itemsize * 8
    low = -2 if np.dtype(dtype).kind == "i" else 0

    @st.composite
    def draw(draw_):
        sa, sb = draw_(broadcast_shapes(2))
        x = draw_(arrays(dtype, sa))
        y = draw_(arrays(dtype, sb, min_value=low, max_value=bits + 2))
        return Sample([x, y], {"direction": draw_(st.sampled_from(["LEFT", "RIGHT"]))})

    return draw()


samples("BitwiseAnd", dt.INTS)(binary)
samples("BitwiseOr", dt.INTS)(binary)
samples("BitwiseXor", dt.INTS)(binary)
samples("BitwiseNot", dt.INTS)(unary)
samples("Xor", BOOL)(binary)

# -- more activations ------------------------------------------------------------
samples("Celu", dt.FLOATS + dt.BFLOAT16, {"bfloat16": (1e-2, 1e-2)})(lambda dtype: with_attrs(unary(dtype), alpha=float_attr(0.125, 3)))
samples("Mish", dt.FLOATS)(unary)
samples("Softsign", dt.FLOATS)(unary)
samples("Swish", dt.FLOATS)(lambda dtype: with_attrs(unary(dtype), alpha=float_attr(-3, 3)))


@samples("SwiGLU", dt.FLOATS)
def swiglu(dtype):
    """A gate and a value of one shape (SwiGLU does not broadcast)."""

    @st.composite
    def draw(draw_):
        shape = draw_(shapes())
        return Sample([draw_(arrays(dtype, shape)), draw_(arrays(dtype, shape))],
                      {"alpha": draw_(float_attr(-3, 3))})

    return draw()
samples("ThresholdedRelu", dt.FLOATS)(lambda dtype: with_attrs(unary(dtype), alpha=float_attr(-3, 3)))


@samples("PRelu", dt.FLOATS + ("uint32", "uint64", "int32", "int64"))
def prelu(dtype):
    """The slope broadcasts to X (unidirectionally)."""

    @st.composite
    def draw(draw_):
        sx = draw_(shapes())
        k = draw_(st.integers(0, len(sx)))
        sslope = tuple(d if draw_(st.booleans()) else 1 for d in sx[len(sx) - k:])
        return Sample([draw_(arrays(dtype, sx, min_value=-10, max_value=10)),
                       draw_(arrays(dtype, sslope, min_value=-10, max_value=10))])

    return draw()


@samples("Shrink", dt.NUMERIC)
def shrink(dtype):
    """lambd >= 0; integer inputs get integral bias (a fraction is truncated away)."""
    is_float = np.dtype(dtype).kind == "f"
    bias = float_attr(-3, 3) if is_float else st.integers(0, 3).map(float)
    return with_attrs(unary(dtype, min_value=-20, max_value=20), lambd=float_attr(0, 5), bias=bias)
