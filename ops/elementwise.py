"""Elementwise ops: arithmetic, math functions, activations, comparison, logic, casts."""
from __future__ import annotations

import numpy as np

from dh_core import dtypes as dt
from dh_core.ir import TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register
from .shapes import broadcast


class Unary(OpDef):
    """One input, one output of the same type and shape."""

    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext):
        return [ctx.types[0]]


class Binary(OpDef):
    """Two broadcasting inputs of one type."""

    inputs = (Param("A", "T"), Param("B", "T"))
    outputs = (Param("C", "T"),)
    constraints = {"T": dt.NUMERIC}

    def infer(self, ctx: InferContext):
        shape = broadcast(ctx.shape(0), ctx.shape(1), node=ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [TensorType(dtype, shape) if dtype else None]


@register
class Add(Binary):
    name = "Add"

    def reference(self, a, b):
        return np.add(a, b)


@register
class Exp(Unary):
    name = "Exp"

    def reference(self, x):
        return np.exp(x)


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
class Cast(OpDef):
    name = "Cast"
    inputs = (Param("input", "T1"),)
    outputs = (Param("output", "T2"),)
    attrs = {"to": Attr("int"), "saturate": Attr("int", 1), "round_mode": Attr("string", "up")}
    constraints = {"T1": dt.ALL, "T2": dt.ALL}

    def infer(self, ctx: InferContext):
        return [TensorType(dt.from_onnx(ctx.attrs["to"]), ctx.shape(0))]

    def reference(self, x, *, to, saturate, round_mode):
        return x.astype(dt.from_onnx(to))

