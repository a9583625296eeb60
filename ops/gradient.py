"""Gradient (domain ai.onnx.preview.training): reverse-mode derivatives of a forward slice.

The node's ``body`` (built by :func:`~dh_core.ops.gradient_body.gradient_body` when a
model is imported) computes y from xs + zs. The reference runs it forward at the
node's inputs, keeping every intermediate, then walks back from a seed of ones shaped
like y (the gradient of sum(y)) through the vector-Jacobian rules of
:mod:`dh_core.ops.vjp`, summing gradients back over broadcast axes. Output i is dY/dX
for xs[i], in the dtype and shape of input i.
"""
from __future__ import annotations

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import GraphError, ShapeError
from dh_core.ir import Graph, Node, node_reads

from .base import Attr, InferContext, OpDef, Param
from .control import evaluate
from .registry import find, register
from .vjp import RULES, unbroadcast

DOMAIN = "ai.onnx.preview.training"
GRADIENT_DTYPES = dt.FLOATS


@register
class Gradient(OpDef):
    """Outputs dY/dX for each X in xs (dY the sum of y), at the values its inputs give
    xs and zs."""

    name = "Gradient"
    domain = DOMAIN
    inputs = (Param("Inputs", "T1", variadic=True, homogeneous=False),)
    outputs = (Param("Outputs", "T2", variadic=True, homogeneous=False),)
    attrs = {"xs": Attr("strings"), "y": Attr("string"), "zs": Attr("strings", None)}
    constraints = {"T1": dt.ALL, "T2": GRADIENT_DTYPES}
    reads_outer = True
    derived_attrs = ("body",)
    value_name_attrs = ("xs", "zs", "y")

    def infer(self, ctx: InferContext):
        out = []
        for i in range(len(ctx.node.outputs)):
            dtype = ctx.dtype(i)
            if dtype is not None and dtype not in GRADIENT_DTYPES:
                raise ShapeError(f"Gradient input {i} ('{ctx.node.inputs[i]}', xs '{ctx.attrs['xs'][i]}') has "
                                 f"dtype {dtype}; gradients are {', '.join(GRADIENT_DTYPES)}")
            out.append(ctx.types[i])
        return out

    def reference(self, *values, xs, y, zs, body: Graph, outer):
        if len(values) != len(body.inputs):
            raise ShapeError(f"Gradient got {len(values)} inputs for {len(body.inputs)} xs and zs")
        with np.errstate(all="ignore"):
            grads = _backward(body, [np.asarray(v) for v in values], len(xs), outer)
        return tuple(np.asarray(g).astype(v.dtype) for g, v in zip(grads, values))


def _backward(body: Graph, values: list[np.ndarray], n_xs: int, outer: dict) -> list[np.ndarray]:
    """The gradients of sum(body output) with respect to the first ``n_xs`` inputs."""
    env = evaluate(body, values, outer)
    x_names = body.input_names[:n_xs]
    active, nodes = _depending_on(body, x_names)
    target = body.outputs[0].name
    grads = {target: np.ones_like(env[target])} if target in active else {}
    for node in reversed(nodes):
        g = grads.get(node.outputs[0])
        if g is None:
            continue
        rule = RULES.get(node.op) if not node.domain and len(node.outputs) == 1 else None
        if rule is None:
            raise GraphError(f"Gradient has no rule to differentiate op {node.op}", node.name)
        inputs = [env[name] if name else None for name in node.inputs]
        parts = rule(g, inputs, env[node.outputs[0]], find(node.op).full_attrs(node))
        for name, x, d in zip(node.inputs, inputs, parts):
            if d is None or name not in active:
                continue
            d = unbroadcast(d, x.shape).astype(x.dtype)
            grads[name] = grads[name] + d if name in grads else d
    return [grads.get(name, np.zeros_like(env[name])) for name in x_names]


def _depending_on(body: Graph, x_names: list[str]) -> tuple[set[str], list[Node]]:
    """The values that depend on ``x_names`` and the nodes that compute them: only
    these need gradients (those of zs and constants do not)."""
    active = set(x_names)
    nodes = []
    for node in body.nodes:
        if any(name in active for name in node_reads(node)):
            active.update(o for o in node.outputs if o)
            nodes.append(node)
    return active, nodes
