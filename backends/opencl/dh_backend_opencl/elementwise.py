"""Broadcasting elementwise kernels generated from a table of OpenCL C expressions.

One kernel per (op, dtype) serves every shape: the output index is split into
coordinates with the output shape, and each input is read through its broadcast
strides (0 on broadcast axes), all passed in a small ``meta`` buffer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dh_core.ir import type_key
from dh_core.ops import registry

from .runtime import Runtime
from .table import OpKernel

CTYPES = {"float32": "float", "float16": "half", "int32": "int", "int64": "long", "bool": "uchar"}
FLOATS = ("float32",)
INTS = ("int32", "int64")


@dataclass(frozen=True)
class Elementwise:
    """An op as an OpenCL C expression over inputs ``a``, ``b``, ``c`` (``T``: their type)."""

    expr: str
    dtypes: tuple[str, ...]
    arity: int
    bool_out: bool = False
    bool_cond: bool = False
    """Where: the first input is bool, ``dtypes`` are those of the other two."""


def _compare(op: str) -> Elementwise:
    return Elementwise(f"a {op} b", FLOATS + INTS, 2, bool_out=True)


OPS: dict[str, Elementwise] = {
    "Add": Elementwise("a + b", FLOATS + INTS, 2),
    "Sub": Elementwise("a - b", FLOATS + INTS, 2),
    "Mul": Elementwise("a * b", FLOATS + INTS, 2),
    "Div": Elementwise("a / b", FLOATS, 2),
    "Max": Elementwise("(isnan(a) || a > b) ? a : b", FLOATS, 2),
    "Min": Elementwise("(isnan(a) || a < b) ? a : b", FLOATS, 2),
    "Neg": Elementwise("-a", FLOATS + INTS, 1),
    "Abs": Elementwise("a < 0 ? -a : a", FLOATS + INTS, 1),
    "Exp": Elementwise("exp(a)", FLOATS, 1),
    "Log": Elementwise("log(a)", FLOATS, 1),
    "Sqrt": Elementwise("sqrt(a)", FLOATS, 1),
    "Reciprocal": Elementwise("1.0f / a", FLOATS, 1),
    "Floor": Elementwise("floor(a)", FLOATS, 1),
    "Ceil": Elementwise("ceil(a)", FLOATS, 1),
    "Relu": Elementwise("a < 0 ? (T)0 : a", FLOATS + INTS, 1),
    "Sigmoid": Elementwise("1.0f / (1.0f + exp(-a))", FLOATS, 1),
    "Tanh": Elementwise("tanh(a)", FLOATS, 1),
    "Equal": _compare("=="),
    "Less": _compare("<"),
    "LessOrEqual": _compare("<="),
    "Greater": _compare(">"),
    "GreaterOrEqual": _compare(">="),
    "Where": Elementwise("a ? b : c", FLOATS + INTS, 3, bool_cond=True),
}

TEMPLATE = """\
{pragma}typedef {T} T;
__kernel void ew({params}, __global const long* meta, const long n)
{{
    long i = get_global_id(0);
    if (i >= n) return;
    int nd = (int)meta[0];
    long r = i{zero};
    for (int d = nd - 1; d >= 0; --d) {{
        long q = r % meta[1 + d];
        r /= meta[1 + d];
{accumulate}
    }}
    y[i] = ({OUT})({expr});
}}
"""


def kernel_source(op: str, dtype: str) -> str:
    """The OpenCL C source of ``op`` on inputs of ``dtype``."""
    spec = OPS[op]
    names = "abc"[:spec.arity]
    types = [CTYPES[dtype]] * spec.arity
    if spec.bool_cond:
        types[0] = "uchar"
    out = "uchar" if spec.bool_out else CTYPES[dtype]
    params = ", ".join([f"__global {out}* y"] + [f"__global const {t}* {n}_" for t, n in zip(types, names)])
    zero = "".join(f", i{n} = 0" for n in names)
    accumulate = "\n".join(f"        i{n} += q * meta[1 + {k + 1} * nd + d];" for k, n in enumerate(names))
    loads = "".join(f"    {t} {n} = {n}_[i{n}];\n" for t, n in zip(types, names))
    pragma = "#pragma OPENCL EXTENSION cl_khr_fp16 : enable\n" if dtype == "float16" else ""
    body = TEMPLATE.format(pragma=pragma, T=CTYPES[dtype], params=params, zero=zero,
                           accumulate=accumulate, OUT=out, expr=spec.expr)
    return body.replace("    y[i] =", loads + "    y[i] =")


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


def elementwise_factory(rt: Runtime, op: str, dtype: str):
    """A kernel running ``op`` on device arrays of ``dtype``, broadcasting them."""
    spec = OPS[op]
    kernel = rt.kernel(kernel_source(op, dtype), "ew")
    out_dtype = np.bool_ if spec.bool_out else np.dtype(dtype)
    metas: dict[tuple, tuple] = {}

    def run(*xs):
        shapes = tuple(x.shape for x in xs)
        cached = metas.get(shapes)
        if cached is None:
            shape, meta = broadcast_meta(list(shapes))
            cached = metas[shapes] = (shape, rt.upload(meta))
        shape, meta = cached
        y = rt.empty(shape, out_dtype)
        n = int(np.prod(shape, dtype=np.int64))
        if n:
            kernel(rt.queue, (n,), None, y.data, *[x.data for x in xs], meta.data, np.int64(n))
        return y

    return run


def _check(op: str):
    spec = OPS[op]

    def check(node, types):
        if len(types) != spec.arity:
            return False
        keys = [type_key(t) for t in types]
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
    return lambda rt, node, types, attrs: elementwise_factory(rt, op, type_key(types[-1]))


KERNELS = {op: OpKernel(_check(op), _make(op)) for op in OPS}
