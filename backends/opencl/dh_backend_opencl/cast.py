"""Cast between float32, int32, int64 and bool on the device.

Conversions follow numpy's on the host the reference runs on: a float that is nan or
out of an integer type's range becomes that type's smallest value (the x86 "integer
indefinite"), any nonzero value (nan included) is True, and integers narrow by
wrapping."""
from __future__ import annotations

import numpy as np

from dh_core import dtypes as dt
from dh_core.ir import type_key

from .elementwise import CTYPES
from .runtime import Runtime
from .table import OpKernel

DTYPES = ("float32", "int32", "int64", "bool")
INT_MIN = {"int32": "INT_MIN", "int64": "LONG_MIN"}

TEMPLATE = """\
__kernel void cast(__global {OUT}* y, __global const {IN}* x, const long n)
{{
    const long i = get_global_id(0);
    if (i >= n) return;
    const {IN} a = x[i];
    y[i] = {expr};
}}
"""


def conversion(src: str, dst: str) -> str:
    """The OpenCL C expression converting ``a`` of dtype ``src`` to ``dst``."""
    if dst == "bool":
        return "(uchar)(a != 0)"
    if src == "float32" and dst in INT_MIN:
        low = INT_MIN[dst]
        return f"(isnan(a) || a < (float){low} || a >= -(float){low}) ? {low} : ({CTYPES[dst]})a"
    return f"({CTYPES[dst]})a"


def cast_source(src: str, dst: str) -> str:
    return TEMPLATE.format(OUT=CTYPES[dst], IN=CTYPES[src], expr=conversion(src, dst))


def cast_factory(rt: Runtime, node, types, attrs):
    src, dst = type_key(types[0]), dt.from_onnx(attrs["to"])
    if src == dst:
        return lambda x: x.copy()
    kernel = rt.kernel(cast_source(src, dst), "cast")

    def run(x):
        y = rt.empty(x.shape, np.dtype(dst))
        if x.size:
            kernel(rt.queue, (x.size,), None, y.data, x.data, np.int64(x.size))
        return y

    return run


def _cast_check(node, types):
    to = node.attrs.get("to")
    return (len(types) == 1 and type_key(types[0]) in DTYPES and to is not None
            and dt.from_onnx(to) in DTYPES)


KERNELS = {"Cast": OpKernel(_cast_check, cast_factory)}
