"""Cast between float16, float32, int32, int64 and bool on the device.

Conversions follow numpy's on the host the reference runs on: a float that is nan or
out of an integer type's range becomes that type's smallest value (the x86 "integer
indefinite"), any nonzero value (nan included) is True, and integers narrow by
wrapping. float16 goes through float32 with vload_half / vstore_half_rte (round to
nearest even), core OpenCL that needs no fp16 extension."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dh_core import dtypes as dt
from dh_core.ir import type_key

from .elementwise import CTYPES
from .runtime import Runtime
from .table import Make, OpKernel

DTYPES = ("float16", "float32", "int32", "int64", "bool")
INT_MIN = {"int32": "INT_MIN", "int64": "LONG_MIN"}

TEMPLATE = """\
__kernel void cast(__global {OUT}* y, __global const {IN}* x, const long n)
{{
    const long i = get_global_id(0);
    if (i >= n) return;
    const {LOADED} a = {load};
    {store};
}}
"""


def conversion(src: str, dst: str) -> str:
    """The OpenCL C expression converting ``a`` of dtype ``src`` to ``dst`` (float16
    values are held as float)."""
    src, dst = ("float32" if d == "float16" else d for d in (src, dst))
    if dst == "bool":
        return "(uchar)(a != 0)"
    if src == "float32" and dst in INT_MIN:
        low = INT_MIN[dst]
        return f"(isnan(a) || a < (float){low} || a >= -(float){low}) ? {low} : ({CTYPES[dst]})a"
    return f"({CTYPES[dst]})a"


def cast_source(src: str, dst: str) -> str:
    load = "vload_half(i, x)" if src == "float16" else "x[i]"
    expr = conversion(src, dst)
    store = f"vstore_half_rte({expr}, i, y)" if dst == "float16" else f"y[i] = {expr}"
    return TEMPLATE.format(OUT=CTYPES[dst], IN=CTYPES[src], LOADED="float" if src == "float16" else CTYPES[src],
                           load=load, store=store)


def cast_factory(rt: Runtime, node, types, attrs):
    src, dst = type_key(types[0]), dt.from_onnx(attrs["to"])
    if src == dst:
        return lambda x: x.copy()
    return converter(rt, src, dst)


def converter(rt: Runtime, src: str, dst: str):
    """A function converting a device array of dtype ``src`` to a new one of ``dst``."""
    kernel = rt.kernel(cast_source(src, dst), "cast")

    def run(x):
        y = rt.empty(x.shape, np.dtype(dst))
        if x.size:
            kernel(rt.queue, (x.size,), None, y.data, x.data, np.int64(x.size))
        return y

    return run


def widened(rt: Runtime, kernel: Callable[..., Any]) -> Callable[..., Any]:
    """``kernel``, written for float32 device arrays, run on float16 ones: each float16
    input is converted to float32 and each float32 output rounded to float16 once, so
    the op computes in float32 throughout. Other inputs and outputs pass unchanged."""
    to_float32, to_float16 = converter(rt, "float16", "float32"), converter(rt, "float32", "float16")

    def narrow(y):
        return to_float16(y) if y.dtype == np.float32 else y

    def run(*xs):
        out = kernel(*[to_float32(x) if x is not None and x.dtype == np.float16 else x for x in xs])
        return tuple(map(narrow, out)) if isinstance(out, tuple) else narrow(out)

    return run


def widening(make: Make) -> Make:
    """``make`` of a float32 kernel, its kernel :func:`widened` when input 0 is float16."""
    def make_widened(rt, node, types, attrs, *consts):
        kernel = make(rt, node, types, attrs, *consts)
        return widened(rt, kernel) if type_key(types[0]) == "float16" else kernel

    return make_widened


def _cast_check(node, types):
    to = node.attrs.get("to")
    return (len(types) == 1 and type_key(types[0]) in DTYPES and to is not None
            and dt.from_onnx(to) in DTYPES)


KERNELS = {"Cast": OpKernel(_cast_check, cast_factory)}
