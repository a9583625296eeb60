"""Samples for the optimizer steps of domain ai.onnx.preview.training.

One to three tensors of any small shape (scalars and zero-size ones too), each with its
gradient and states of the same shape; accumulated squares are nonnegative. R is a 0-d
float32 or float64, T a 0-d int64 from 0 (the first step, which Adam and Momentum treat
apart) to 5; the attributes are drawn across their useful ranges. Gradient
differentiates a small hand-built body (its xs and zs name the one-node graph's inputs).
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt
from dh_core.ir import Graph, Node, TensorType, Value

from . import Sample, samples
from .elementwise import float_attr
from .linalg import values
from .strategies import shapes

OPTIMIZER_TYPES = ("float32", "float64")
OPTIMIZER_TOLERANCE = {"float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10)}
"""Per tensor dtype; the references update in float64 and round each output once."""


def _optimizer_sample(dtype: str, states: tuple[bool, ...], attrs: dict):
    """R, T, then X..., G..., and one group per state (True: nonnegative)."""

    @st.composite
    def draw(draw_):
        n = draw_(st.integers(1, 3))
        tensor_shapes = [draw_(shapes(max_dims=3, max_side=3)) for _ in range(n)]
        groups = [[draw_(values(dtype, s, bound=4, special=False)) for s in tensor_shapes] for _ in range(2)]
        for nonnegative in states:
            groups.append([draw_(values(dtype, s, bound=4, special=False, nonnegative=nonnegative))
                           for s in tensor_shapes])
        r = np.array(draw_(st.floats(0, 1, width=32)), draw_(st.sampled_from(OPTIMIZER_TYPES)))
        t = np.array(draw_(st.integers(0, 5)), np.int64)
        return Sample([r, t, *(x for group in groups for x in group)], draw_(st.fixed_dictionaries(attrs)),
                      n_outputs=n * (len(states) + 1))

    return draw()


@samples("Adagrad", OPTIMIZER_TYPES, OPTIMIZER_TOLERANCE)
def adagrad(dtype):
    return _optimizer_sample(dtype, (True,), {
        "decay_factor": float_attr(0, 1), "epsilon": st.sampled_from([1e-6, 1e-2]),
        "norm_coefficient": float_attr(0, 0.5)})


@samples("Adam", OPTIMIZER_TYPES, OPTIMIZER_TOLERANCE)
def adam(dtype):
    return _optimizer_sample(dtype, (False, True), {
        "alpha": float_attr(0, 0.875), "beta": float_attr(0, 0.9375), "epsilon": st.sampled_from([1e-6, 1e-2]),
        "norm_coefficient": float_attr(0, 0.5), "norm_coefficient_post": float_attr(0, 0.5)})


@samples("Momentum", OPTIMIZER_TYPES, OPTIMIZER_TOLERANCE)
def momentum(dtype):
    return _optimizer_sample(dtype, (False,), {
        "alpha": float_attr(0, 1), "beta": float_attr(0, 1), "mode": st.sampled_from(["standard", "nesterov"]),
        "norm_coefficient": float_attr(0, 0.5)})


GRADIENT_BINARY = ("Add", "Sub", "Mul")
GRADIENT_UNARY = ("Identity", "Neg", "Abs", "Relu", "Exp", "Sigmoid", "Tanh")


@samples("Gradient", dt.FLOATS)
def gradient(dtype):
    """y = unary(binary(x, z)) * w over a small body: x of any small shape (scalars and
    zero-size ones too), z of its shape, its last axis or a scalar (broadcasting), w an
    outer value of x's shape; z is differentiated too (xs) or not (zs)."""

    @st.composite
    def draw(draw_):
        shape = draw_(shapes(max_dims=3, max_side=3))
        z_shape = draw_(st.sampled_from([shape, shape[-1:], ()]))
        x, z, w = (draw_(values(dtype, s, bound=2, special=False)) for s in (shape, z_shape, shape))
        body = Graph([Node(draw_(st.sampled_from(GRADIENT_BINARY)), ["bx", "bz"], ["bh"], name="binary"),
                      Node(draw_(st.sampled_from(GRADIENT_UNARY)), ["bh"], ["bu"], name="unary"),
                      Node("Mul", ["bu", "w"], ["by"], name="weigh")],
                     [Value("bx", TensorType(dtype, shape)), Value("bz", TensorType(dtype, z_shape))],
                     [Value("by", TensorType(dtype, shape))], name="gradient_body")
        both = draw_(st.booleans())
        attrs = {"xs": ["x0", "x1"] if both else ["x0"], "zs": [] if both else ["x1"], "y": "y", "body": body}
        return Sample([x, z], attrs, n_outputs=2 if both else 1, outer={"w": w})

    return draw()
