"""Broadcasting elementwise kernels generated from a table of OpenCL C expressions.

One kernel per (op, dtype) serves every shape: the output index is split into
coordinates with the output shape, and each input is read through its broadcast
strides (0 on broadcast axes), all passed in a small ``meta`` buffer. float16 is held
as float between its load and its one rounding on store, on every device."""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dh_core.ir import type_key
from dh_core.ops import registry

from .runtime import Runtime
from .table import OpKernel

CTYPES = {"float32": "float", "float16": "half", "int32": "int", "int64": "long", "bool": "uchar",
          "int8": "char", "int16": "short", "uint8": "uchar", "uint16": "ushort", "uint32": "uint", "uint64": "ulong"}
FLOATS = ("float32", "float16")
"""float16 is stored as half and computed in float: read with vload_half, rounded once
on store with vstore_half_rte (core OpenCL, no fp16 extension needed)."""
INTS = ("int32", "int64")
BOOL = ("bool",)
EXPONENTS = ("float16", "float32", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
"""Pow's exponent dtypes: integers and float16 (read with vload_half, no fp16 extension)."""


@dataclass(frozen=True)
class Elementwise:
    """An op as an OpenCL C expression over inputs ``a``, ``b``, ``c``, ... (``T``: their
    type). ``{name}`` in the expression is replaced by the node's attribute ``name``;
    a variadic op (``arity`` None) folds its inputs with ``expr`` over ``a`` and ``b``."""

    expr: str
    dtypes: tuple[str, ...]
    arity: int | None
    bool_out: bool = False
    bool_cond: bool = False
    """Where: the first input is bool, ``dtypes`` are those of the other two."""
    mean: bool = False
    """Divide the fold by the number of inputs."""
    exponent_dtypes: tuple[str, ...] = ()
    """Pow: the dtypes the second input may have, whatever the first's."""


MAX_VARIADIC = 8
"""The most inputs a variadic op's kernel takes."""


def _compare(op: str) -> Elementwise:
    return Elementwise(f"a {op} b", FLOATS + INTS, 2, bool_out=True)


def _logic(expr: str, arity: int = 2) -> Elementwise:
    return Elementwise(expr, BOOL, arity)


OPS: dict[str, Elementwise] = {
    "Add": Elementwise("a + b", FLOATS + INTS, 2),
    "Sub": Elementwise("a - b", FLOATS + INTS, 2),
    "Mul": Elementwise("a * b", FLOATS + INTS, 2),
    "Div": Elementwise("a / b", FLOATS, 2),
    "Pow": Elementwise("pow(a, (T)b)", FLOATS, 2, exponent_dtypes=EXPONENTS),
    "Mod": Elementwise("{fmod} ? fmod_(a, b) : mod_(a, b)", FLOATS + INTS, 2),
    "Max": Elementwise("max_(a, b)", FLOATS + INTS, None),
    "Min": Elementwise("min_(a, b)", FLOATS + INTS, None),
    "Sum": Elementwise("a + b", FLOATS, None),
    "Mean": Elementwise("a + b", FLOATS, None, mean=True),
    "Neg": Elementwise("-a", FLOATS + INTS, 1),
    "Abs": Elementwise("a < 0 ? -a : a", FLOATS + INTS, 1),
    "Sign": Elementwise("a > 0 ? (T)1 : (a < 0 ? (T)-1 : a)", FLOATS + INTS, 1),
    "Exp": Elementwise("exp(a)", FLOATS, 1),
    "Log": Elementwise("log(a)", FLOATS, 1),
    "Sqrt": Elementwise("sqrt(a)", FLOATS, 1),
    "Reciprocal": Elementwise("1.0f / a", FLOATS, 1),
    "Floor": Elementwise("floor(a)", FLOATS, 1),
    "Ceil": Elementwise("ceil(a)", FLOATS, 1),
    "Round": Elementwise("rint(a)", FLOATS, 1),
    "Erf": Elementwise("erf(a)", FLOATS, 1),
    "Sin": Elementwise("sin(a)", FLOATS, 1),
    "Cos": Elementwise("cos(a)", FLOATS, 1),
    "Tan": Elementwise("tan(a)", FLOATS, 1),
    "Asin": Elementwise("asin(a)", FLOATS, 1),
    "Acos": Elementwise("acos(a)", FLOATS, 1),
    "Atan": Elementwise("atan(a)", FLOATS, 1),
    "Sinh": Elementwise("sinh(a)", FLOATS, 1),
    "Cosh": Elementwise("cosh(a)", FLOATS, 1),
    "Asinh": Elementwise("asinh(a)", FLOATS, 1),
    "Acosh": Elementwise("acosh(a)", FLOATS, 1),
    "Atanh": Elementwise("atanh(a)", FLOATS, 1),
    "BitwiseAnd": Elementwise("a & b", INTS, 2),
    "BitwiseOr": Elementwise("a | b", INTS, 2),
    "BitwiseXor": Elementwise("a ^ b", INTS, 2),
    "BitwiseNot": Elementwise("~a", INTS, 1),
    "Relu": Elementwise("a < 0 ? (T)0 : a", FLOATS + INTS, 1),
    "LeakyRelu": Elementwise("a < 0 ? {alpha} * a : a", FLOATS, 1),
    "Elu": Elementwise("a < 0 ? {alpha} * expm1(a) : a", FLOATS, 1),
    "Selu": Elementwise("a < 0 ? {gamma} * ({alpha} * exp(a) - {alpha}) : {gamma} * a", FLOATS, 1),
    "HardSigmoid": Elementwise("max_((T)0, min_((T)1, {alpha} * a + {beta}))", FLOATS, 1),
    "HardSwish": Elementwise("a * max_((T)0, min_((T)1, (1.0f / 6.0f) * a + 0.5f))", FLOATS, 1),
    "Softplus": Elementwise("max_(a, (T)0) + log1p(exp(-fabs(a)))", FLOATS, 1),
    "Gelu": Elementwise("gelu_{approximate}(a)", FLOATS, 1),
    "Sigmoid": Elementwise("1.0f / (1.0f + exp(-a))", FLOATS, 1),
    "Tanh": Elementwise("tanh(a)", FLOATS, 1),
    "Clip": Elementwise("min_(max_(a, b), c)", FLOATS + INTS, 3),  # less without a bound
    "IsNaN": Elementwise("isnan(a)", FLOATS, 1, bool_out=True),
    "IsInf": Elementwise("isinf(a) && (a > 0 ? {detect_positive} : {detect_negative})", FLOATS, 1,
                         bool_out=True),
    "Not": _logic("!a", 1),
    "And": _logic("a && b"),
    "Or": _logic("a || b"),
    "Xor": _logic("a != b"),
    "Equal": _compare("=="),
    "Less": _compare("<"),
    "LessOrEqual": _compare("<="),
    "Greater": _compare(">"),
    "GreaterOrEqual": _compare(">="),
    "Where": Elementwise("a ? b : c", FLOATS + INTS, 3, bool_cond=True),
}

PRELUDE = """\
#pragma OPENCL FP_CONTRACT OFF
typedef {T} T;
{round}// max and min; for floats a nan on either side wins
inline T max_(T a, T b) {{ return ({nan}a > b) ? a : b; }}
inline T min_(T a, T b) {{ return ({nan}a < b) ? a : b; }}
"""

ROUND_HALF = """\
// a nan becomes the one quiet nan: which of two nans an operation returns depends on the
// compiler's operand order, so fused and unfused kernels could differ in its sign
inline void store_half(float x, long i, __global half* y) { vstore_half_rte(isnan(x) ? NAN : x, i, y); }
// x rounded to the nearest half (ties to even), held as float: what store_half then a load gives
inline float round_half(float x) {
    ushort h;
    vstore_half_rte(isnan(x) ? NAN : x, 0, (__private half*)&h);
    return vload_half(0, (__private const half*)&h);
}
"""

HELPERS = {
    # the remainder with the divisor's sign (numpy's mod); integers give 0 for b == 0
    "Mod": {"float": """\
inline T fmod_(T a, T b) { return fmod(a, b); }
inline T mod_(T a, T b) {
    T r = fmod(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
""", "int": """\
inline T fmod_(T a, T b) { return (b == 0 || b == -1) ? 0 : a % b; }
inline T mod_(T a, T b) {
    T r = fmod_(a, b);
    return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}
"""},
    # 1 + erf(x) as erfc(-x) and 1 + tanh(u) as 2 / (1 + exp(-2u)): no cancellation for
    # negative inputs, and -inf gives nan (-inf * 0) as the reference does
    "Gelu": {"float": """\
inline T gelu_none(T a) { return 0.5f * a * erfc(-a * M_SQRT1_2_F); }
inline T gelu_tanh(T a) { return a / (1.0f + exp(-1.5957691216057308f * (a + 0.044715f * a * a * a))); }
"""},
}

TEMPLATE = """\
{prelude}{helpers}
__kernel void ew({params}, __global const long* _meta, const long _n)
{{
    long _i = get_global_id(0);
    if (_i >= _n) return;
    int _nd = (int)_meta[0];
    long _r = _i{zero};
    for (int _d = _nd - 1; _d >= 0; --_d) {{
        long _q = _r % _meta[1 + _d];
        _r /= _meta[1 + _d];
{accumulate}
    }}
{loads}{body}    {store};
}}

__kernel void ew_same({params}, const long _n)
{{
    long _i = get_global_id(0);
    if (_i >= _n) return;
{same_loads}{body}    {store};
}}
"""


def literal(value, dtype: str = "float32") -> str:
    """An attribute value as an OpenCL C float literal (ints and bools as 0/1 ints); a
    float attribute of a float16 op is first rounded to float16, as the reference does."""
    if isinstance(value, (bool, int, np.integer)):
        return str(int(value))
    if isinstance(value, str):
        return value
    v = float(np.float32(value).astype(np.float16 if dtype == "float16" else np.float32))
    if math.isnan(v):
        return "NAN"
    if math.isinf(v):
        return "INFINITY" if v > 0 else "-INFINITY"
    return f"{v!r}f"


def expression(op: str, arity: int, attrs: dict, present: Sequence[bool] = (), dtype: str = "float32") -> str:
    """``op``'s expression over ``arity`` inputs, attributes filled in; Clip's depends
    on which bounds are ``present``; a variadic op folds with ``fold_<op>``."""
    spec = OPS[op]
    names = "abcdefgh"[:arity]
    if op == "Clip" and arity < 3:
        low, high = (list(present) + [False, False])[1:3]
        expr, rest = "a", iter(names[1:])
        if low:
            expr = f"max_({expr}, {next(rest)})"
        if high:
            expr = f"min_({expr}, {next(rest)})"
        return expr
    if spec.arity is not None:
        return spec.expr.format(**{k: literal(v, dtype) for k, v in attrs.items()})
    expr = names[0]
    for name in names[1:]:
        expr = f"fold_{op}({expr}, {name})"
    return f"{expr} / (T){arity}" if spec.mean else expr


def input_ctypes(op: str, dtype: str, arity: int, exponent: str | None = None) -> list[str]:
    """The C type of each input buffer of ``op`` on ``dtype`` (Pow's exponent: ``exponent``)."""
    types = [CTYPES[dtype]] * arity
    if OPS[op].bool_cond:
        types[0] = "uchar"
    if exponent is not None:
        types[1] = CTYPES[exponent]
    return types


def output_ctype(op: str, dtype: str) -> str:
    return "uchar" if OPS[op].bool_out else CTYPES[dtype]


def local_ctype(ctype: str) -> str:
    """The C type a value of buffer type ``ctype`` is held in (half as float)."""
    return "float" if ctype == "half" else ctype


def rounded(ctype: str, value: str) -> str:
    """``value`` (held in ``local_ctype(ctype)``) rounded as storing it as ``ctype`` would."""
    return f"round_half({value})" if ctype == "half" else value


def helpers_source(op: str, dtype: str) -> str:
    """The helper functions ``op``'s expression calls on ``dtype``."""
    helpers = HELPERS.get(op, {}).get("float" if dtype in FLOATS else "int", "")
    if OPS[op].arity is None:  # each step rounds to the dtype, as the reference's does
        helpers += f"inline T fold_{op}(T a, T b) {{ return {rounded(CTYPES[dtype], OPS[op].expr)}; }}\n"
    return helpers


def broadcast_source(dtype: str, helpers: str, inputs: Sequence[tuple[str, str]], out: str,
                     result: str, body: str = "") -> str:
    """A kernel ``ew`` over broadcast ``inputs`` ((buffer C type, name) pairs, each read
    into a local of that name) writing ``result`` (after the statements ``body``) as ``out``."""
    names = [n for _, n in inputs]
    params = ", ".join([f"__global {out}* _y"] + [f"__global const {t}* {n}_" for t, n in inputs])
    zero = "".join(f", _i{n} = 0" for n in names)
    accumulate = "\n".join(f"        _i{n} += _q * _meta[1 + {k + 1} * _nd + _d];" for k, n in enumerate(names))

    def load(t: str, n: str, index: str) -> str:
        if local_ctype(t) != t:
            return f"    float {n} = vload_half({index}, {n}_);\n"
        return f"    {t} {n} = {n}_[{index}];\n"

    loads = "".join(load(t, n, f"_i{n}") for t, n in inputs)
    same_loads = "".join(load(t, n, "_i") for t, n in inputs)
    store = f"store_half({result}, _i, _y)" if out == "half" else f"_y[_i] = {result}"
    prelude = PRELUDE.format(T=local_ctype(CTYPES[dtype]), round=ROUND_HALF if dtype == "float16" else "",
                             nan="isnan(a) || " if dtype in FLOATS else "")
    return TEMPLATE.format(prelude=prelude, helpers=helpers, params=params, zero=zero, accumulate=accumulate,
                           loads=loads, same_loads=same_loads, body=body, store=store)


def kernel_source(op: str, dtype: str, arity: int | None = None, attrs: dict | None = None,
                  present: Sequence[bool] = (), exponent: str | None = None) -> str:
    """The OpenCL C source of ``op`` on ``arity`` inputs of ``dtype`` (Pow's second
    input of dtype ``exponent``)."""
    arity = OPS[op].arity if arity is None else arity
    inputs = list(zip(input_ctypes(op, dtype, arity, exponent), "abcdefgh"))
    out = output_ctype(op, dtype)
    return broadcast_source(dtype, helpers_source(op, dtype), inputs, out,
                            f"({local_ctype(out)})({expression(op, arity, attrs or {}, present, dtype)})")


def broadcast_meta(shapes: list[tuple[int, ...]]) -> tuple[tuple[int, ...], np.ndarray]:
    """The output shape and ``[ndim, out_shape..., strides of each input...]`` (in elements)."""
    out = np.broadcast_shapes(*shapes)
    nd = len(out)
    meta = [nd, *out]
    for shape in shapes:
        padded = (1,) * (nd - len(shape)) + tuple(shape)
        strides, step = [0] * nd, 1
        for d in range(nd - 1, -1, -1):
            strides[d] = 0 if padded[d] == 1 else step
            step *= padded[d]
        meta.extend(strides)
    return out, np.asarray(meta, dtype=np.int64)


def broadcast_launcher(rt: Runtime, source: str, out_dtype: np.dtype):
    """Runs kernel ``ew`` of ``source`` on device arrays, broadcasting them (``ew_same``
    when every input has the output's shape); absent optional inputs (None) are skipped."""
    kernel, same = rt.kernel(source, "ew"), rt.kernel(source, "ew_same")
    metas: dict[tuple, tuple] = {}

    def run(*given):
        xs = [x for x in given if x is not None]
        shapes = tuple(x.shape for x in xs)
        cached = metas.get(shapes)
        if cached is None:
            shape, meta = broadcast_meta(list(shapes))
            alike = all(s == shape for s in shapes)  # no broadcasting: every input read at i
            cached = metas[shapes] = (shape, None if alike else rt.upload(meta))
        shape, meta = cached
        y = rt.empty(shape, out_dtype)
        n = int(np.prod(shape, dtype=np.int64))
        if n and meta is None:
            same(rt.queue, (n,), None, y.data, *[x.data for x in xs], np.int64(n))
        elif n:
            kernel(rt.queue, (n,), None, y.data, *[x.data for x in xs], meta.data, np.int64(n))
        return y

    return run


def elementwise_factory(rt: Runtime, op: str, dtype: str, arity: int | None = None, attrs: dict | None = None,
                        present: Sequence[bool] = (), exponent: str | None = None):
    """A kernel running ``op`` on ``arity`` device arrays of ``dtype``, broadcasting them;
    absent optional inputs (None) are skipped."""
    out_dtype = np.bool_ if OPS[op].bool_out else np.dtype(dtype)
    return broadcast_launcher(rt, kernel_source(op, dtype, arity, attrs, present, exponent), out_dtype)


def _check(op: str):
    spec = OPS[op]

    def check(node, types):
        if spec.arity is None and not 1 <= len(types) <= MAX_VARIADIC:
            return False
        if spec.arity is not None and not (len(types) == spec.arity or op == "Clip" and 1 <= len(types) <= 3):
            return False
        keys = [type_key(t) for t in types]
        if spec.exponent_dtypes:
            if keys[1] not in spec.exponent_dtypes:
                return False
            keys = keys[:1]
        if spec.bool_cond:
            cond, keys = keys[0], keys[1:]
            if cond != "bool":
                return False
        return len(set(keys)) == 1 and keys[0] in spec.dtypes and keys[0] in _allowed(op, node)

    return check


def _allowed(op: str, node) -> tuple[str, ...]:
    opdef = registry.get(op, node.domain)
    data = next(p for p in opdef.inputs if p.name not in ("condition",))
    return opdef.dtypes(data.type)


def _make(op: str):
    def make(rt, node, types, attrs):
        spec = OPS[op]
        present = [t is not None for t in types]
        dtype = type_key(types[1] if spec.bool_cond else types[0])
        exponent = type_key(types[1]) if spec.exponent_dtypes else None
        return elementwise_factory(rt, op, dtype, sum(present), attrs, present, exponent)

    return make


KERNELS = {op: OpKernel(_check(op), _make(op)) for op in OPS}
