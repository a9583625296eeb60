"""Elementwise ops: arithmetic, math functions, activations, comparison, logic, casts.

References follow ONNX exactly: results keep the input dtype (numpy's promotions are
undone), integer arithmetic wraps, float attributes are 32-bit as in an ONNX model.
Composites decompose into core ops, following ONNX's function bodies where it has them.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import InputError, ShapeError
from dh_core.ir import TensorType

from . import casting
from .base import Attr, Decomposer, InferContext, OpDef, Param
from .registry import register
from .shapes import broadcast
from .values import ANY_VALUE

_ERF = np.vectorize(math.erf, otypes=[np.float64])


def attr_const(value: float, x: np.ndarray) -> np.ndarray:
    """A float attribute as ONNX stores it (float32), in the dtype of ``x``."""
    return np.asarray(np.float32(value), dtype=x.dtype)


def trunc_divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Integer division rounding toward zero (C semantics), exact for every int dtype."""
    return (a - np.fmod(a, b)) // b


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, computed in float64 and rounded to the dtype of ``x``."""
    return _ERF(x.astype(np.float64)).astype(x.dtype)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow for large ``|x|``."""
    one = np.ones((), x.dtype)
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, one / (one + e), e / (one + e)).astype(x.dtype)


def emit_sigmoid(d: Decomposer, x: str, outputs: list[str] | int = 1) -> str:
    """Emit the logistic function in core ops as :func:`sigmoid` computes it: with
    ``e = exp(-|x|)``, ``1 / (1 + e)`` for x >= 0 and ``e / (1 + e)`` below, so that very
    negative inputs keep their tiny values instead of dividing by an infinite exp."""
    one = d.const(1, d.dtype())
    e = d.op("Exp", d.op("Neg", d.op("Abs", x)))
    denominator = d.op("Add", one, e)
    negative = d.op("Less", x, d.const(0, d.dtype()))
    return d.op("Where", negative, d.op("Div", e, denominator), d.op("Div", one, denominator),
                outputs=outputs)


def _array_reference(fn):
    """Wrap a reference: numpy's floating-point warnings off (nan, inf and wrap-around
    are the semantics here) and an array result, never a numpy scalar."""

    @functools.wraps(fn)
    def reference(self, *inputs, **attrs):
        with np.errstate(all="ignore"):
            return np.asarray(fn(self, *inputs, **attrs))

    return reference


class Elementwise(OpDef):
    """Base of this family; every subclass's ``reference`` is wrapped by _array_reference."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "reference" in cls.__dict__:
            cls.reference = _array_reference(cls.__dict__["reference"])


class Unary(Elementwise):
    """One input, one output of the same type and shape."""

    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext):
        return [ctx.types[0]]


class UnaryIO(Unary):
    """A unary op whose ONNX schema names its tensors ``input`` and ``output``."""

    inputs = (Param("input", "T"),)
    outputs = (Param("output", "T"),)


class Binary(Elementwise):
    """Two broadcasting inputs of one type."""

    inputs = (Param("A", "T"), Param("B", "T"))
    outputs = (Param("C", "T"),)
    constraints = {"T": dt.NUMERIC}

    def infer(self, ctx: InferContext):
        shape = broadcast(*(ctx.shape(i) for i in range(len(ctx.types))), node=ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [TensorType(dtype, shape) if dtype else None]


class Compare(Binary):
    """A broadcasting comparison with a bool result."""

    outputs = (Param("C", "T1"),)
    constraints = {"T": dt.NUMERIC, "T1": ("bool",)}


class Logical(Binary):
    """A broadcasting boolean connective."""

    outputs = (Param("C", "T1"),)
    constraints = {"T": ("bool",), "T1": ("bool",)}


class Variadic(Binary):
    """One or more broadcasting inputs folded left to right with ``ufunc``."""

    inputs = (Param("data_0", "T", variadic=True),)
    ufunc: np.ufunc

    def reference(self, *xs):
        return functools.reduce(self.ufunc, xs[1:], xs[0].copy())


def emit_sum(d: Decomposer, names: list[str], outputs: list[str] | int = 1) -> str:
    """Emit the sum of ``names`` as a chain of Adds (Identity for a single name)."""
    *rest, last = names
    if not rest:
        return d.op("Identity", last, outputs=outputs)
    return d.op("Add", emit_sum(d, rest) if len(rest) > 1 else rest[0], last, outputs=outputs)


# -- arithmetic ----------------------------------------------------------------
@register
class Add(Binary):
    name = "Add"

    def reference(self, a, b):
        return np.add(a, b)


@register
class Sub(Binary):
    name = "Sub"

    def reference(self, a, b):
        return np.subtract(a, b)


@register
class Mul(Binary):
    name = "Mul"

    def reference(self, a, b):
        return np.multiply(a, b)


@register
class Div(Binary):
    """Integer division truncates toward zero; a zero integer divisor is undefined."""

    name = "Div"

    def reference(self, a, b):
        if a.dtype.kind in "iu":
            return trunc_divide(a, b)
        return np.divide(a, b)


@register
class Pow(Binary):
    """``X ** Y`` with the result in the dtype of X. Integer powers wrap on overflow;
    an integer base to a negative integer power is ``trunc(x ** y)``; a float
    exponent of an integer base is evaluated in float64 and truncated."""

    name = "Pow"
    inputs = (Param("X", "T"), Param("Y", "T1"))
    outputs = (Param("Z", "T"),)
    constraints = {"T": ("int32", "int64") + dt.FLOATS, "T1": dt.NUMERIC}

    def reference(self, x, y):
        if x.dtype.kind == "i" and y.dtype.kind in "iu":
            e = y.astype(np.int64)
            z = np.power(x.astype(np.int64), np.abs(e))
            z = np.where((e < 0) & (np.abs(x) != 1), 0, z)
        else:
            z = np.power(x.astype(np.float64), y.astype(np.float64))
        return np.asarray(z).astype(x.dtype)


@register
class Neg(Unary):
    name = "Neg"
    constraints = {"T": dt.SIGNED_NUMERIC}

    def reference(self, x):
        return np.negative(x)


@register
class Abs(Unary):
    name = "Abs"
    constraints = {"T": dt.NUMERIC}

    def reference(self, x):
        return np.abs(x)


@register
class Reciprocal(Unary):
    name = "Reciprocal"
    composite = True

    def reference(self, x):
        return np.divide(np.ones((), x.dtype), x)

    def decompose(self, d):
        d.op("Div", d.const(1, d.dtype()), d.inputs[0], outputs=d.outputs)


@register
class Sign(UnaryIO):
    name = "Sign"
    constraints = {"T": dt.NUMERIC}

    def reference(self, x):
        return np.sign(x)


# -- math functions ------------------------------------------------------------
@register
class Exp(UnaryIO):
    name = "Exp"

    def reference(self, x):
        return np.exp(x)


@register
class Log(UnaryIO):
    name = "Log"

    def reference(self, x):
        return np.log(x)


@register
class Sqrt(Unary):
    name = "Sqrt"

    def reference(self, x):
        return np.sqrt(x)


@register
class Sin(UnaryIO):
    name = "Sin"

    def reference(self, x):
        return np.sin(x)


@register
class Cos(UnaryIO):
    name = "Cos"

    def reference(self, x):
        return np.cos(x)


@register
class Tanh(UnaryIO):
    name = "Tanh"

    def reference(self, x):
        return np.tanh(x)


@register
class Erf(UnaryIO):
    name = "Erf"

    def reference(self, x):
        return erf(x)


@register
class Floor(Unary):
    name = "Floor"

    def reference(self, x):
        return np.floor(x)


@register
class Ceil(Unary):
    name = "Ceil"

    def reference(self, x):
        return np.ceil(x)


@register
class Round(Unary):
    """Rounds half to even."""

    name = "Round"

    def reference(self, x):
        return np.round(x)


@register
class Tan(UnaryIO):
    name = "Tan"

    def reference(self, x):
        return np.tan(x)


@register
class Asin(UnaryIO):
    name = "Asin"

    def reference(self, x):
        return np.arcsin(x)


@register
class Acos(UnaryIO):
    name = "Acos"

    def reference(self, x):
        return np.arccos(x)


@register
class Atan(UnaryIO):
    name = "Atan"

    def reference(self, x):
        return np.arctan(x)


@register
class Sinh(UnaryIO):
    name = "Sinh"

    def reference(self, x):
        return np.sinh(x)


@register
class Cosh(UnaryIO):
    name = "Cosh"

    def reference(self, x):
        return np.cosh(x)


@register
class Asinh(UnaryIO):
    name = "Asinh"

    def reference(self, x):
        return np.arcsinh(x)


@register
class Acosh(UnaryIO):
    name = "Acosh"

    def reference(self, x):
        return np.arccosh(x)


@register
class Atanh(UnaryIO):
    name = "Atanh"

    def reference(self, x):
        return np.arctanh(x)


@register
class Mod(Binary):
    """``fmod=0``: integer remainder with the sign of the divisor (floats need
    ``fmod=1``); ``fmod=1``: C fmod, with the sign of the dividend. A zero integer
    divisor is undefined."""

    name = "Mod"
    attrs = {"fmod": Attr("int", 0)}

    def reference(self, a, b, *, fmod):
        return np.fmod(a, b) if fmod else np.mod(a, b)


# -- bitwise -------------------------------------------------------------------
class Bitwise(Binary):
    constraints = {"T": dt.INTS}


@register
class BitShift(Bitwise):
    """Right shifts of signed values are arithmetic; left shifts discard bits past the
    top. A shift that is negative or at least the bit width gives the sign fill
    alone (-1 for a right shift of a negative X, else 0)."""

    name = "BitShift"
    inputs = (Param("X", "T"), Param("Y", "T"))
    outputs = (Param("Z", "T"),)
    attrs = {"direction": Attr("string")}

    def reference(self, x, y, *, direction):
        bits = x.dtype.itemsize * 8
        unsigned = np.dtype(f"uint{bits}")
        valid = (y >= 0) & (y < bits)
        amount = np.where(valid, y, 0).astype(unsigned)
        if direction == "LEFT":
            shifted = np.left_shift(x.view(unsigned), amount).view(x.dtype)
            fill = np.zeros((), x.dtype)
        else:
            shifted = np.right_shift(x, amount.astype(x.dtype))
            fill = np.where(x < 0, -1, 0).astype(x.dtype)
        return np.where(valid, shifted, fill).astype(x.dtype)


@register
class BitwiseAnd(Bitwise):
    name = "BitwiseAnd"

    def reference(self, a, b):
        return np.bitwise_and(a, b)


@register
class BitwiseOr(Bitwise):
    name = "BitwiseOr"

    def reference(self, a, b):
        return np.bitwise_or(a, b)


@register
class BitwiseXor(Bitwise):
    name = "BitwiseXor"

    def reference(self, a, b):
        return np.bitwise_xor(a, b)


@register
class BitwiseNot(Unary):
    name = "BitwiseNot"
    constraints = {"T": dt.INTS}

    def reference(self, x):
        return np.invert(x)


# -- activations ---------------------------------------------------------------
@register
class Relu(Unary):
    name = "Relu"
    constraints = {"T": dt.SIGNED_NUMERIC}
    composite = True

    def reference(self, x):
        return np.maximum(x, np.zeros((), x.dtype))

    def decompose(self, d):
        zero = d.const(0, d.dtype())
        d.op("Max", d.inputs[0], zero, outputs=d.outputs)


@register
class Sigmoid(Unary):
    name = "Sigmoid"
    composite = True

    def reference(self, x):
        return sigmoid(x)

    def decompose(self, d):
        emit_sigmoid(d, d.inputs[0], d.outputs)


@register
class LeakyRelu(Unary):
    name = "LeakyRelu"
    attrs = {"alpha": Attr("float", 0.01)}
    composite = True

    def reference(self, x, *, alpha):
        return np.where(x < 0, attr_const(alpha, x) * x, x).astype(x.dtype)

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        neg = d.op("Less", x, d.const(0, dtype))
        scaled = d.op("Mul", x, d.const(np.float32(d.attrs["alpha"]), dtype))
        d.op("Where", neg, scaled, x, outputs=d.outputs)


@register
class Elu(Unary):
    name = "Elu"
    attrs = {"alpha": Attr("float", 1.0)}
    composite = True

    def reference(self, x, *, alpha):
        return np.where(x < 0, attr_const(alpha, x) * np.expm1(x), x).astype(x.dtype)

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        neg = d.op("Less", x, d.const(0, dtype))
        em1 = d.op("Sub", d.op("Exp", x), d.const(1, dtype))
        scaled = d.op("Mul", em1, d.const(np.float32(d.attrs["alpha"]), dtype))
        d.op("Where", neg, scaled, x, outputs=d.outputs)


@register
class Selu(Unary):
    name = "Selu"
    attrs = {"alpha": Attr("float", 1.67326319217681884765625),
             "gamma": Attr("float", 1.05070102214813232421875)}
    composite = True

    def reference(self, x, *, alpha, gamma):
        a, g = attr_const(alpha, x), attr_const(gamma, x)
        return np.where(x < 0, g * (a * np.exp(x) - a), g * x).astype(x.dtype)

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        alpha = d.const(np.float32(d.attrs["alpha"]), dtype)
        gamma = d.const(np.float32(d.attrs["gamma"]), dtype)
        neg = d.op("Less", x, d.const(0, dtype))
        low = d.op("Mul", gamma, d.op("Sub", d.op("Mul", alpha, d.op("Exp", x)), alpha))
        d.op("Where", neg, low, d.op("Mul", gamma, x), outputs=d.outputs)


_SQRT_2_OVER_PI = math.sqrt(2 / math.pi)


@register
class Gelu(Unary):
    """``approximate="none"`` uses erf, ``"tanh"`` the tanh approximation."""

    name = "Gelu"
    attrs = {"approximate": Attr("string", "none")}
    composite = True

    def reference(self, x, *, approximate):
        x64 = x.astype(np.float64)
        if approximate == "tanh":
            phi = 1 + np.tanh(_SQRT_2_OVER_PI * (x64 + 0.044715 * x64 ** 3))
        else:
            phi = 1 + _ERF(x64 / math.sqrt(2))
        return (0.5 * x64 * phi).astype(x.dtype)

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        if d.attrs["approximate"] == "tanh":
            cube = d.op("Mul", d.op("Mul", x, x), x)
            inner = d.op("Add", x, d.op("Mul", cube, d.const(0.044715, dtype)))
            t = d.op("Tanh", d.op("Mul", inner, d.const(_SQRT_2_OVER_PI, dtype)))
        else:
            t = d.op("Erf", d.op("Mul", x, d.const(1 / math.sqrt(2), dtype)))
        phi = d.op("Add", t, d.const(1, dtype))
        d.op("Mul", d.op("Mul", x, d.const(0.5, dtype)), phi, outputs=d.outputs)


def hard_sigmoid(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """``max(0, min(1, alpha * x + beta))`` in the dtype of x (nan propagates)."""
    y = attr_const(alpha, x) * x + attr_const(beta, x)
    return np.maximum(np.zeros((), x.dtype), np.minimum(np.ones((), x.dtype), y))


def emit_hard_sigmoid(d: Decomposer, x: str, alpha: float, beta: float,
                      outputs: list[str] | int = 1) -> str:
    """Emit ``Max(Min(x * alpha + beta, 1), 0)`` as ONNX's function body does."""
    dtype = d.dtype()
    y = d.op("Add", d.op("Mul", x, d.const(np.float32(alpha), dtype)), d.const(np.float32(beta), dtype))
    return d.op("Max", d.op("Min", y, d.const(1, dtype)), d.const(0, dtype), outputs=outputs)


@register
class HardSigmoid(Unary):
    name = "HardSigmoid"
    attrs = {"alpha": Attr("float", 0.2), "beta": Attr("float", 0.5)}
    composite = True

    def reference(self, x, *, alpha, beta):
        return hard_sigmoid(x, alpha, beta)

    def decompose(self, d):
        emit_hard_sigmoid(d, d.inputs[0], d.attrs["alpha"], d.attrs["beta"], d.outputs)


@register
class HardSwish(Unary):
    """``x * HardSigmoid(x, alpha=1/6, beta=0.5)``."""

    name = "HardSwish"
    composite = True

    def reference(self, x):
        return x * hard_sigmoid(x, 1 / 6, 0.5)

    def decompose(self, d):
        x = d.inputs[0]
        d.op("Mul", x, emit_hard_sigmoid(d, x, 1 / 6, 0.5), outputs=d.outputs)


@register
class Softplus(Unary):
    """``log(1 + exp(x))``, evaluated stably as ``max(x, 0) + log(1 + exp(-|x|))``."""

    name = "Softplus"
    composite = True

    def reference(self, x):
        return (np.maximum(x, np.zeros((), x.dtype)) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        tail = d.op("Exp", d.op("Neg", d.op("Abs", x)))
        log1p = d.op("Log", d.op("Add", tail, d.const(1, dtype)))
        d.op("Add", d.op("Max", x, d.const(0, dtype)), log1p, outputs=d.outputs)


def emit_elu(d: Decomposer, x: str, outputs: list[str] | int = 1) -> str:
    """Emit ``Where(x < 0, Exp(x) - 1, x)``: Elu with alpha 1 in core ops."""
    dtype = d.dtype()
    neg = d.op("Less", x, d.const(0, dtype))
    em1 = d.op("Sub", d.op("Exp", x), d.const(1, dtype))
    return d.op("Where", neg, em1, x, outputs=outputs)


def emit_softplus(d: Decomposer, x: str) -> str:
    """Emit the stable ``max(x, 0) + log(1 + exp(-|x|))`` in core ops."""
    dtype = d.dtype()
    tail = d.op("Exp", d.op("Neg", d.op("Abs", x)))
    log1p = d.op("Log", d.op("Add", tail, d.const(1, dtype)))
    return d.op("Add", d.op("Max", x, d.const(0, dtype)), log1p)


def softplus(x: np.ndarray) -> np.ndarray:
    return (np.maximum(x, np.zeros((), x.dtype)) + np.log1p(np.exp(-np.abs(x)))).astype(x.dtype)


@register
class Celu(Unary):
    """``alpha * Elu(x / alpha)``, as ONNX's function body."""

    name = "Celu"
    attrs = {"alpha": Attr("float", 1.0)}
    constraints = {"T": dt.FLOATS + dt.BFLOAT16}
    composite = True

    def reference(self, x, *, alpha):
        work = casting.widen(x)  # bfloat16 computes in float32
        a = attr_const(alpha, work)
        xs = work / a
        return (a * np.where(xs < 0, np.expm1(xs), xs)).astype(x.dtype)

    def decompose(self, d):
        alpha = d.const(np.float32(d.attrs["alpha"]), d.dtype())
        elu = emit_elu(d, d.op("Div", d.inputs[0], alpha))
        d.op("Mul", alpha, elu, outputs=d.outputs)


@register
class Mish(Unary):
    """``x * tanh(softplus(x))``."""

    name = "Mish"
    composite = True

    def reference(self, x):
        return (x * np.tanh(softplus(x))).astype(x.dtype)

    def decompose(self, d):
        x = d.inputs[0]
        d.op("Mul", x, d.op("Tanh", emit_softplus(d, x)), outputs=d.outputs)


def swish(x: np.ndarray, alpha: float) -> np.ndarray:
    """``x * sigmoid(alpha * x)``, alpha as ONNX's float32 in the dtype of x."""
    return (x * sigmoid(attr_const(alpha, x) * x)).astype(x.dtype)


def emit_swish(d: Decomposer, x: str, alpha: float, outputs: list[str] | int = 1) -> str:
    """Emit ``x * sigmoid(alpha * x)`` in core ops."""
    scaled = d.op("Mul", x, d.const(np.float32(alpha), d.dtype()))
    return d.op("Mul", x, emit_sigmoid(d, scaled), outputs=outputs)


@register
class Swish(Unary):
    """``x * sigmoid(alpha * x)`` (SiLU when alpha is 1)."""

    name = "Swish"
    attrs = {"alpha": Attr("float", 1.0)}
    composite = True

    def reference(self, x, *, alpha):
        return swish(x, alpha)

    def decompose(self, d):
        emit_swish(d, d.inputs[0], d.attrs["alpha"], d.outputs)


@register
class SwiGLU(Elementwise):
    """``Swish(A, alpha) * B`` for a gate A and a value B of one shape (no broadcasting)."""

    name = "SwiGLU"
    inputs = (Param("A", "T"), Param("B", "T"))
    outputs = (Param("Y", "T"),)
    attrs = {"alpha": Attr("float", 1.0)}
    constraints = {"T": dt.FLOATS}
    composite = True

    def infer(self, ctx: InferContext):
        a, b = ctx.shape(0), ctx.shape(1)
        if a is not None and b is not None and (len(a) != len(b) or any(
                isinstance(i, int) and isinstance(j, int) and i != j for i, j in zip(a, b))):
            raise ShapeError(f"SwiGLU inputs A {list(a)} and B {list(b)} differ in shape", ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [None if dtype is None else TensorType(dtype, a if a is not None else b)]

    def reference(self, a, b, *, alpha):
        if a.shape != b.shape:
            raise ShapeError(f"SwiGLU inputs A {list(a.shape)} and B {list(b.shape)} differ in shape")
        return swish(a, alpha) * b

    def decompose(self, d):
        d.op("Mul", emit_swish(d, d.inputs[0], d.attrs["alpha"]), d.inputs[1], outputs=d.outputs)


@register
class PRelu(Elementwise):
    """``slope * x`` where x < 0, else x; slope broadcasts to the shape of X."""

    name = "PRelu"
    inputs = (Param("X", "T"), Param("slope", "T"))
    outputs = (Param("Y", "T"),)
    constraints = {"T": dt.FLOATS + ("uint32", "uint64", "int32", "int64")}
    composite = True

    def infer(self, ctx: InferContext):
        return [ctx.types[0]]

    def reference(self, x, slope):
        return np.where(x < 0, slope * x, x).astype(x.dtype)

    def decompose(self, d):
        x, slope = d.inputs
        neg = d.op("Less", x, d.const(0, d.dtype()))
        d.op("Where", neg, d.op("Mul", slope, x), x, outputs=d.outputs)


@register
class ThresholdedRelu(Unary):
    """x where ``x > alpha``, else 0."""

    name = "ThresholdedRelu"
    attrs = {"alpha": Attr("float", 1.0)}
    composite = True

    def reference(self, x, *, alpha):
        return np.where(attr_const(alpha, x) < x, x, np.zeros((), x.dtype))

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        above = d.op("Less", d.const(np.float32(d.attrs["alpha"]), dtype), x)
        d.op("Where", above, x, d.const(0, dtype), outputs=d.outputs)


@register
class Shrink(UnaryIO):
    """``x + bias`` where ``x < -lambd``, ``x - bias`` where ``x > lambd``, else 0, with
    lambd and bias cast to the input dtype (truncated for integers) as ONNX's function
    body does; integer arithmetic wraps."""

    name = "Shrink"
    attrs = {"bias": Attr("float", 0.0), "lambd": Attr("float", 0.5)}
    constraints = {"T": dt.NUMERIC}
    composite = True

    def reference(self, x, *, bias, lambd):
        lam, b = attr_const(lambd, x), attr_const(bias, x)
        wide = x.astype(np.float64)
        low = wide < -lam.astype(np.float64)
        high = lam.astype(np.float64) < wide
        return np.where(low, x + b, np.where(high, x - b, np.zeros((), x.dtype))).astype(x.dtype)

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        lam = np.asarray(np.float32(d.attrs["lambd"])).astype(dtype)
        bias = d.const(np.float32(d.attrs["bias"]), dtype)
        zero = d.const(0, dtype)
        high = d.op("Where", d.op("Less", d.const(lam), x), d.op("Sub", x, bias), zero,
                    outputs=1 if np.dtype(dtype).kind != "u" else d.outputs)
        if np.dtype(dtype).kind != "u":  # -lambd of an unsigned input is never above x
            low = d.op("Less", x, d.const(-lam))
            d.op("Where", low, d.op("Add", x, bias), high, outputs=d.outputs)


@register
class Softsign(UnaryIO):
    """``x / (1 + |x|)``."""

    name = "Softsign"
    composite = True

    def reference(self, x):
        return x / (np.ones((), x.dtype) + np.abs(x))

    def decompose(self, d):
        x = d.inputs[0]
        denom = d.op("Add", d.const(1, d.dtype()), d.op("Abs", x))
        d.op("Div", x, denom, outputs=d.outputs)


@register
class Clip(Elementwise):
    """Clamp to the optional scalar bounds; with ``min > max`` every value becomes max."""

    name = "Clip"
    inputs = (Param("input", "T"), Param("min", "T", optional=True), Param("max", "T", optional=True))
    outputs = (Param("output", "T"),)
    constraints = {"T": dt.NUMERIC}
    composite = True

    def infer(self, ctx: InferContext):
        return [ctx.types[0]]

    def reference(self, x, lo=None, hi=None):
        y = x if lo is None else np.maximum(x, lo)
        return y if hi is None else np.minimum(y, hi)

    def decompose(self, d):
        bounds = list(zip(("Max", "Min"), d.inputs[1:]))
        steps = [(op, bound) for op, bound in bounds if bound]
        if not steps:
            d.op("Identity", d.inputs[0], outputs=d.outputs)
        y = d.inputs[0]
        for i, (op, bound) in enumerate(steps):
            y = d.op(op, y, bound, outputs=d.outputs if i == len(steps) - 1 else 1)


# -- variadic ------------------------------------------------------------------
@register
class Min(Variadic):
    """Elementwise minimum; nan wins."""

    name = "Min"
    outputs = (Param("min", "T"),)
    ufunc = np.minimum


@register
class Max(Variadic):
    """Elementwise maximum; nan wins."""

    name = "Max"
    outputs = (Param("max", "T"),)
    ufunc = np.maximum


@register
class Sum(Variadic):
    name = "Sum"
    outputs = (Param("sum", "T"),)
    constraints = {"T": dt.FLOATS}
    ufunc = np.add
    composite = True

    def decompose(self, d):
        emit_sum(d, d.inputs, d.outputs)


@register
class Mean(Variadic):
    """The sum, in the input dtype, divided by the number of inputs."""

    name = "Mean"
    outputs = (Param("mean", "T"),)
    constraints = {"T": dt.FLOATS}
    ufunc = np.add
    composite = True

    def reference(self, *xs):
        return np.divide(super().reference(*xs), np.asarray(len(xs), xs[0].dtype))

    def decompose(self, d):
        total = d.inputs[0] if len(d.inputs) == 1 else emit_sum(d, d.inputs)
        d.op("Div", total, d.const(len(d.inputs), d.dtype()), outputs=d.outputs)


# -- comparison and logic ------------------------------------------------------
@register
class Equal(Compare):
    name = "Equal"
    constraints = {"T": dt.ALL + dt.STRING, "T1": ("bool",)}

    def reference(self, a, b):
        return np.equal(a, b).astype(bool)


@register
class Less(Compare):
    name = "Less"

    def reference(self, a, b):
        return np.less(a, b)


@register
class Greater(Compare):
    name = "Greater"

    def reference(self, a, b):
        return np.greater(a, b)


@register
class LessOrEqual(Compare):
    """``Less or Equal``: false when either side is nan."""

    name = "LessOrEqual"
    composite = True

    def reference(self, a, b):
        return np.less_equal(a, b)

    def decompose(self, d):
        a, b = d.inputs
        d.op("Or", d.op("Less", a, b), d.op("Equal", a, b), outputs=d.outputs)


@register
class GreaterOrEqual(Compare):
    name = "GreaterOrEqual"
    composite = True

    def reference(self, a, b):
        return np.greater_equal(a, b)

    def decompose(self, d):
        a, b = d.inputs
        d.op("Or", d.op("Greater", a, b), d.op("Equal", a, b), outputs=d.outputs)


@register
class Not(Unary):
    name = "Not"
    constraints = {"T": ("bool",)}

    def reference(self, x):
        return np.logical_not(x)


@register
class And(Logical):
    name = "And"

    def reference(self, a, b):
        return np.logical_and(a, b)


@register
class Or(Logical):
    name = "Or"

    def reference(self, a, b):
        return np.logical_or(a, b)


@register
class Xor(Logical):
    name = "Xor"

    def reference(self, a, b):
        return np.logical_xor(a, b)


@register
class Where(Binary):
    name = "Where"
    inputs = (Param("condition", "B"), Param("X", "T"), Param("Y", "T"))
    outputs = (Param("output", "T"),)
    constraints = {"B": ("bool",), "T": dt.ALL}

    def reference(self, condition, x, y):
        return np.where(condition, x, y)


@register
class IsNaN(Elementwise):
    name = "IsNaN"
    inputs = (Param("X", "T1"),)
    outputs = (Param("Y", "T2"),)
    constraints = {"T1": dt.FLOATS, "T2": ("bool",)}

    def infer(self, ctx: InferContext):
        return [TensorType("bool", ctx.shape(0))]

    def reference(self, x):
        return np.isnan(x)


@register
class IsInf(IsNaN):
    name = "IsInf"
    attrs = {"detect_negative": Attr("int", 1), "detect_positive": Attr("int", 1)}
    composite = True

    def reference(self, x, *, detect_negative, detect_positive):
        pos = np.isposinf(x) if detect_positive else np.zeros(x.shape, bool)
        neg = np.isneginf(x) if detect_negative else np.zeros(x.shape, bool)
        return pos | neg

    def decompose(self, d):
        x, dtype = d.inputs[0], d.dtype()
        pos, neg = d.attrs["detect_positive"], d.attrs["detect_negative"]
        if pos and neg:
            d.op("Equal", d.op("Abs", x), d.const(np.inf, dtype), outputs=d.outputs)
        elif pos or neg:
            d.op("Equal", x, d.const(np.inf if pos else -np.inf, dtype), outputs=d.outputs)
        else:  # x < x is false everywhere, nan included
            d.op("Less", x, x, outputs=d.outputs)


# -- casts and identity --------------------------------------------------------
@register
class Cast(Elementwise):
    """Cast to the dtype with ONNX code ``to``. Float to int truncates toward zero (nan,
    inf and out-of-range values are undefined); int narrowing wraps; nonzero is true.
    ``saturate`` and ``round_mode`` only concern the float8/float4 targets
    (:mod:`dh_core.ops.casting`). Strings: see :func:`to_text` and :func:`from_text`."""

    name = "Cast"
    inputs = (Param("input", "T1"),)
    outputs = (Param("output", "T2"),)
    attrs = {"to": Attr("int"), "saturate": Attr("int", 1), "round_mode": Attr("string", "up")}
    constraints = {"T1": dt.ALL_TYPES + dt.STRING, "T2": dt.ALL_TYPES + dt.STRING}

    def infer(self, ctx: InferContext):
        casting.check_round_mode(ctx.attrs["round_mode"], ctx.node.name or self.name)
        return [TensorType(dt.from_onnx(ctx.attrs["to"]), ctx.shape(0))]

    def reference(self, x, *, to, saturate, round_mode):
        return cast(x, dt.from_onnx(to), saturate, round_mode)


def cast(x: np.ndarray, to: str, saturate: int = 1, round_mode: str = "up") -> np.ndarray:
    """``x`` as the IR dtype ``to`` by ONNX's Cast rules, string conversions included
    (text reaches a low-precision type through float32, or int64 for 4- and 2-bit ints)."""
    if to in dt.STRING:
        return to_text(casting.widen(x))
    if dt.name_of(x.dtype) in dt.STRING:
        if to in dt.LOW_PRECISION:
            x = from_text(x, "int64" if to in dt.INT4 + dt.INT2 else "float32")
        else:
            return from_text(x, to)
    return casting.cast(x, to, saturate, round_mode)


def to_text(x: np.ndarray) -> np.ndarray:
    """Numbers as text: the shortest decimal that reads back as the same value in the
    source dtype (``0.1``, ``1e-05``, ``1e+20``, ``100.0``), ``nan``, ``inf`` and
    ``-inf``; integers in decimal; bools as ``True`` and ``False``."""
    return x.astype(np.str_).astype(object)


def from_text(x: np.ndarray, dtype: str) -> np.ndarray:
    """Text as numbers: decimal and scientific notation; ``INF``, ``+INF``, ``-INF`` and
    ``NaN`` in any case. A text with a fraction becomes an integer by truncation;
    ``True``/``False`` (any case) or a number (nonzero is true) become bools. Other text
    is undefined in ONNX and raises InputError."""
    kind = np.dtype(dtype).kind

    def parse(s: str):
        text = s.strip()
        if kind == "b" and text.lower() in ("true", "false"):
            return text.lower() == "true"
        try:
            return int(text) if kind in "iu" else float(text)
        except ValueError:
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"Cast cannot read {s!r} as a number") from None
            if kind in "iu":
                if not math.isfinite(value):
                    raise InputError(f"Cast cannot read {s!r} as an integer") from None
                return int(value)
            return value

    values = [parse(s) for s in x.reshape(-1)]
    if kind in "iu":
        info = np.iinfo(dtype)
        values = [(v - info.min) % (int(info.max) - int(info.min) + 1) + info.min for v in values]
    return np.array(values, dtype=dtype).reshape(x.shape)


@register
class CastLike(Elementwise):
    name = "CastLike"
    inputs = (Param("input", "T1"), Param("target_type", "T2"))
    outputs = (Param("output", "T2"),)
    attrs = {"saturate": Attr("int", 1), "round_mode": Attr("string", "up")}
    constraints = {"T1": dt.ALL_TYPES + dt.STRING, "T2": dt.ALL_TYPES + dt.STRING}
    composite = True

    def infer(self, ctx: InferContext):
        casting.check_round_mode(ctx.attrs["round_mode"], ctx.node.name or self.name)
        dtype = ctx.dtype(1)
        return [None if dtype is None else TensorType(dtype, ctx.shape(0))]

    def reference(self, x, target, *, saturate, round_mode):
        return cast(x, dt.name_of(target.dtype), saturate, round_mode)

    def decompose(self, d):
        d.op("Cast", d.inputs[0], outputs=d.outputs, to=dt.onnx_code(d.dtype(1)),
             saturate=d.attrs["saturate"], round_mode=d.attrs["round_mode"])


@register
class BitCast(Elementwise):
    """The input's bits reinterpreted as the dtype with ONNX code ``to``, which must have
    the same bit width."""

    name = "BitCast"
    inputs = (Param("input", "T1"),)
    outputs = (Param("output", "T2"),)
    attrs = {"to": Attr("int")}
    constraints = {"T1": dt.ALL_TYPES, "T2": dt.ALL_TYPES}

    def infer(self, ctx: InferContext):
        target = dt.from_onnx(ctx.attrs["to"])
        source = ctx.dtype(0)
        if source is not None and casting.bit_width(source) != casting.bit_width(target):
            raise ShapeError(f"BitCast from {source} ({casting.bit_width(source)} bits) to {target} "
                             f"({casting.bit_width(target)} bits): the widths differ", ctx.node.name or self.name)
        return [TensorType(target, ctx.shape(0))]

    def reference(self, x, *, to):
        target = dt.from_onnx(to)
        if casting.bit_width(dt.name_of(x.dtype)) != casting.bit_width(target):
            raise ShapeError(f"BitCast from {dt.name_of(x.dtype)} to {target}: the bit widths differ")
        return casting.bitcast(x, target)


@register
class Identity(OpDef):
    name = "Identity"
    inputs = (Param("input", "V"),)
    outputs = (Param("output", "V"),)
    constraints = {"V": ANY_VALUE + dt.STRING}

    def infer(self, ctx: InferContext):
        return [ctx.types[0]]

    def reference(self, x):
        if x is None or isinstance(x, list):
            return None if x is None else list(x)
        return x.copy()
