"""Optimizer steps of domain ai.onnx.preview.training: Adagrad, Adam and Momentum.

Each takes the learning rate R and the update count T (0-d), then n tensors to
optimize followed by n tensors of each kind of state (gradients G, then the running
averages the method keeps), and returns the n updated tensors followed by the n updated
states. Every tensor is updated independently with ONNX's formulas, which broadcast.
The arithmetic runs in float64 and each output is rounded once to its input's dtype.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register
from .shapes import broadcast

DOMAIN = "ai.onnx.preview.training"


class _Optimizer(OpDef):
    """Inputs R, T, then ``groups`` groups of n tensors; outputs ``groups - 1`` groups
    (the first input group and the running states, updated; G has no output)."""

    domain = DOMAIN
    inputs = (Param("R", "T1"), Param("T", "T2"), Param("inputs", "T3", variadic=True, homogeneous=False))
    outputs = (Param("outputs", "T3", variadic=True, homogeneous=False),)
    constraints = {"T1": ("float32", "float64"), "T2": ("int64",), "T3": ("float32", "float64")}
    groups: int
    step: Callable[..., tuple[np.ndarray, ...]]
    """``step(r, t, (X, G, states...), **attrs)``: one tensor's update in float64,
    returning (X_new, states_new...)."""

    def _split(self, n_inputs: int, node: str | None = None) -> int:
        """n, the number of tensors optimized, from the count of variadic inputs."""
        n_tensors = n_inputs - 2
        if n_tensors <= 0 or n_tensors % self.groups:
            raise ShapeError(f"{self.name} takes R, T and {self.groups} groups of n tensors each, "
                             f"got {n_tensors} tensors after R and T", node)
        return n_tensors // self.groups

    def infer(self, ctx: InferContext):
        n = self._split(len(ctx.node.inputs), ctx.node.name)
        out = []
        for group in [0, *range(2, self.groups)]:
            for i in range(n):
                parts = [2 + j * n + i for j in range(self.groups)]
                t = ctx.types[2 + group * n + i]
                shapes = [ctx.shape(k) for k in parts]
                shape = None if any(s is None for s in shapes) else broadcast(*shapes, node=ctx.node.name)
                out.append(None if t is None else TensorType(t.dtype, shape))
        return out[:len(ctx.node.outputs)]

    def reference(self, r, t, *tensors, **attrs):
        n = self._split(len(tensors) + 2)
        wide = [np.asarray(x, np.float64) for x in tensors]
        rate, step = float(np.asarray(r).reshape(())), int(np.asarray(t).reshape(()))
        attrs = {k: float(np.float32(v)) if isinstance(v, float) else v for k, v in attrs.items()}
        results = [self.step(rate, step, [wide[j * n + i] for j in range(self.groups)], **attrs)
                   for i in range(n)]
        dtypes = [tensors[g * n + i].dtype for g in [0, *range(2, self.groups)] for i in range(n)]
        flat = [res[g] for g in range(self.groups - 1) for res in results]
        return tuple(np.asarray(y).astype(d) for y, d in zip(flat, dtypes))


@register
class Adagrad(_Optimizer):
    """r = R / (1 + T * decay_factor); G' = norm_coefficient * X + G; H_new = H + G'**2;
    X_new = X - r * G' / (sqrt(H_new) + epsilon). Inputs R, T, X..., G..., H...;
    outputs X_new..., H_new...."""

    name = "Adagrad"
    attrs = {"decay_factor": Attr("float", 0.0), "epsilon": Attr("float", 1e-6),
             "norm_coefficient": Attr("float", 0.0)}
    groups = 3

    def step(self, r, t, tensors, *, decay_factor, epsilon, norm_coefficient):
        x, g, h = tensors
        rate = r / (1 + t * decay_factor)
        g = norm_coefficient * x + g
        h_new = h + g * g
        return x - rate * g / (np.sqrt(h_new) + epsilon), h_new


@register
class Adam(_Optimizer):
    """G' = norm_coefficient * X + G; V_new = alpha * V + (1 - alpha) * G';
    H_new = beta * H + (1 - beta) * G'**2; R' = R * sqrt(1 - beta**T) / (1 - alpha**T)
    for T > 0, else R; X_new = (1 - norm_coefficient_post) * (X - R' * V_new /
    (sqrt(H_new) + epsilon)). Inputs R, T, X..., G..., V..., H...; outputs X_new...,
    V_new..., H_new...."""

    name = "Adam"
    attrs = {"alpha": Attr("float", 0.9), "beta": Attr("float", 0.999), "epsilon": Attr("float", 1e-6),
             "norm_coefficient": Attr("float", 0.0), "norm_coefficient_post": Attr("float", 0.0)}
    groups = 4

    def step(self, r, t, tensors, *, alpha, beta, epsilon, norm_coefficient, norm_coefficient_post):
        x, g, v, h = tensors
        g = norm_coefficient * x + g
        v_new = alpha * v + (1 - alpha) * g
        h_new = beta * h + (1 - beta) * g * g
        rate = r * np.sqrt(1 - beta ** t) / (1 - alpha ** t) if t > 0 else r
        x_new = x - rate * v_new / (np.sqrt(h_new) + epsilon)
        return (1 - norm_coefficient_post) * x_new, v_new, h_new


@register
class Momentum(_Optimizer):
    """G' = norm_coefficient * X + G; V_new = alpha * V + beta' * G' with beta' = beta
    for T > 0, else 1; X_new = X - R * V_new ("standard") or X - R * (G' + alpha * V_new)
    ("nesterov"). Inputs R, T, X..., G..., V...; outputs X_new..., V_new...."""

    name = "Momentum"
    attrs = {"alpha": Attr("float"), "beta": Attr("float"), "mode": Attr("string"),
             "norm_coefficient": Attr("float")}
    groups = 3

    def infer(self, ctx: InferContext):
        _check_mode(ctx.attrs["mode"], ctx.node.name)
        return super().infer(ctx)

    def step(self, r, t, tensors, *, alpha, beta, mode, norm_coefficient):
        _check_mode(mode)
        x, g, v = tensors
        g = norm_coefficient * x + g
        v_new = alpha * v + (beta if t > 0 else 1.0) * g
        direction = v_new if mode == "standard" else g + alpha * v_new
        return x - r * direction, v_new


def _check_mode(mode: str, node: str | None = None) -> None:
    if mode not in ("standard", "nesterov"):
        raise ShapeError(f"Momentum mode '{mode}' is not standard or nesterov", node)
