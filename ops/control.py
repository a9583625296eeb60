"""Control flow: If, Loop and Scan, whose bodies are subgraphs.

Their references evaluate the body with :func:`run_graph`, a small interpreter over the
library's references, with the enclosing scopes' values (``outer``) bound. They run on
the host: the CPU backend executes them, other backends leave them to it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import DHError, ShapeError
from dh_core.ir import Graph, TensorType, ValueType

from .base import Attr, InferContext, OpDef, Param
from .registry import find, register
from .values import ANY_VALUE


def run_graph(graph: Graph, inputs: Sequence[Any], outer: Mapping[str, Any]) -> list[Any]:
    """Evaluate a (sub)graph with the op references: ``inputs`` bind its inputs in order,
    ``outer`` the enclosing scopes' values its nodes read. Returns its outputs."""
    env = evaluate(graph, inputs, outer)
    return [env[v.name] for v in graph.outputs]


def evaluate(graph: Graph, inputs: Sequence[Any], outer: Mapping[str, Any]) -> dict[str, Any]:
    """Like :func:`run_graph`, but returns every value by name: the outer ones, the
    initializers, the inputs and each node's outputs."""
    env = dict(outer)
    env.update(graph.initializers)
    env.update(zip(graph.input_names, inputs))
    for node in graph.nodes:
        opdef = find(node.op, node.domain)
        if opdef is None:
            raise DHError(f"unknown op {node.op} in subgraph '{graph.name}'")
        args = [env[name] if name else None for name in node.inputs]
        results = opdef.run_reference(node, args, env if opdef.reads_outer else None)
        for name, value in zip(node.outputs, results):
            if name:
                env[name] = value
    return env


def merge_types(a: ValueType | None, b: ValueType | None) -> ValueType | None:
    """A type both ``a`` and ``b`` satisfy: dims they disagree on become unknown."""
    if a is None or b is None:
        return a if b is None else b
    if not (isinstance(a, TensorType) and isinstance(b, TensorType)):
        return a if a == b else None
    if a.dtype != b.dtype:
        return None
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorType(a.dtype)
    return TensorType(a.dtype, tuple(x if x == y else None for x, y in zip(a.shape, b.shape)))


def _output_types(graph: Graph) -> list[ValueType | None]:
    return [graph.value_types.get(v.name, v.type) for v in graph.outputs]


def _stacked(t: ValueType | None, length: Any, axis: int = 0) -> TensorType | None:
    """The type of per-iteration tensors of type ``t`` stacked along ``axis``."""
    if not isinstance(t, TensorType):
        return None
    if t.shape is None:
        return TensorType(t.dtype)
    shape = list(t.shape)
    shape.insert(axis if axis >= 0 else axis + len(shape) + 1, length)
    return TensorType(t.dtype, tuple(shape))


def _stack(slices: list[np.ndarray], body_type: ValueType | None) -> np.ndarray:
    """Per-iteration outputs stacked on a new first axis (empty when no iteration ran)."""
    if slices:
        return np.stack(slices)
    if isinstance(body_type, TensorType) and body_type.is_static:
        return np.zeros((0, *body_type.shape), dtype=body_type.dtype)
    dtype = body_type.dtype if isinstance(body_type, TensorType) else "float32"
    return np.zeros((0,), dtype=dtype)


@register
class If(OpDef):
    name = "If"
    inputs = (Param("cond", "B"),)
    outputs = (Param("outputs", "V", variadic=True, homogeneous=False),)
    attrs = {"else_branch": Attr("graph"), "then_branch": Attr("graph")}
    constraints = {"B": ("bool",), "V": ANY_VALUE}
    reads_outer = True

    def infer(self, ctx: InferContext):
        then = _output_types(ctx.attrs["then_branch"])
        other = _output_types(ctx.attrs["else_branch"])
        if len(then) != len(other) or len(then) != len(ctx.node.outputs):
            raise ShapeError(f"If: then_branch has {len(then)} outputs, else_branch {len(other)}, "
                             f"the node {len(ctx.node.outputs)}")
        return [merge_types(a, b) for a, b in zip(then, other)]

    def reference(self, cond, *, else_branch, then_branch, outer):
        cond = np.asarray(cond)
        if cond.size != 1:
            raise ShapeError(f"If: cond must hold one element, it has shape {list(cond.shape)}")
        branch = then_branch if bool(cond.reshape(-1)[0]) else else_branch
        return tuple(run_graph(branch, [], outer))


@register
class Loop(OpDef):
    """``for i in range(M) while cond``: the body maps (i, cond, carried...) to
    (cond, carried..., scan outputs...); scan outputs are stacked over iterations."""

    name = "Loop"
    inputs = (Param("M", "I", optional=True), Param("cond", "B", optional=True),
              Param("v_initial", "V", variadic=True, min_arity=0, homogeneous=False))
    outputs = (Param("v_final_and_scan_outputs", "V", variadic=True, homogeneous=False),)
    attrs = {"body": Attr("graph")}
    constraints = {"I": ("int64",), "B": ("bool",), "V": ANY_VALUE}
    reads_outer = True

    def infer(self, ctx: InferContext):
        body = ctx.attrs["body"]
        n_carried = max(0, len(ctx.node.inputs) - 2)
        outs = _output_types(body)[1:]
        if len(outs) != len(ctx.node.outputs) or len(body.inputs) != n_carried + 2:
            raise ShapeError(f"Loop: the body has {len(body.inputs)} inputs and {len(outs) + 1} outputs "
                             f"for {n_carried} loop-carried values and {len(ctx.node.outputs)} node outputs")
        carried = [merge_types(ctx.types[2 + i], outs[i]) for i in range(n_carried)]
        return carried + [_stacked(t, None) for t in outs[n_carried:]]

    def reference(self, m=None, cond=None, *initial, body, outer):
        trips = None if m is None else int(np.asarray(m).reshape(-1)[0])
        go = True if cond is None else bool(np.asarray(cond).reshape(-1)[0])
        carried = list(initial)
        body_types = _output_types(body)[1 + len(carried):]
        scans: list[list[np.ndarray]] = [[] for _ in body_types]
        i = 0
        while go and (trips is None or i < trips):
            outs = run_graph(body, [np.array(i, np.int64), np.array(go)] + carried, outer)
            go = bool(np.asarray(outs[0]).reshape(-1)[0])
            carried = outs[1:1 + len(carried)]
            for k, value in enumerate(outs[1 + len(carried):]):
                scans[k].append(np.asarray(value))
            i += 1
        return tuple(carried + [_stack(s, t) for s, t in zip(scans, body_types)])


@register
class Scan(OpDef):
    """Runs the body once per slice of the scan inputs, threading state values through;
    per-iteration scan outputs are stacked along their output axes."""

    name = "Scan"
    inputs = (Param("initial_state_and_scan_inputs", "V", variadic=True, homogeneous=False),)
    outputs = (Param("final_state_and_scan_outputs", "V", variadic=True, homogeneous=False),)
    attrs = {"body": Attr("graph"), "num_scan_inputs": Attr("int"), "scan_input_axes": Attr("ints", None),
             "scan_input_directions": Attr("ints", None), "scan_output_axes": Attr("ints", None),
             "scan_output_directions": Attr("ints", None)}
    constraints = {"V": dt.ALL}
    reads_outer = True

    @staticmethod
    def _layout(n_inputs: int, n_scan: int, attrs: dict):
        n_state = n_inputs - n_scan
        if n_scan < 1 or n_state < 0:
            raise ShapeError(f"Scan: num_scan_inputs is {n_scan} for {n_inputs} inputs")
        in_axes = list(attrs.get("scan_input_axes") or [0] * n_scan)
        in_dirs = list(attrs.get("scan_input_directions") or [0] * n_scan)
        return n_state, in_axes, in_dirs

    def infer(self, ctx: InferContext):
        n_state, in_axes, _ = self._layout(len(ctx.node.inputs), ctx.attrs["num_scan_inputs"], ctx.attrs)
        outs = _output_types(ctx.attrs["body"])
        if len(outs) != len(ctx.node.outputs):
            raise ShapeError(f"Scan: the body has {len(outs)} outputs, the node {len(ctx.node.outputs)}")
        length = None
        first = ctx.shape(n_state)
        if first is not None and first:
            length = first[in_axes[0] % len(first)]
        n_out = len(outs) - n_state
        out_axes = list(ctx.attrs.get("scan_output_axes") or [0] * n_out)
        states = [merge_types(ctx.types[i], outs[i]) for i in range(n_state)]
        return states + [_stacked(t, length, out_axes[k]) for k, t in enumerate(outs[n_state:])]

    def reference(self, *values, body, num_scan_inputs, scan_input_axes, scan_input_directions,
                  scan_output_axes, scan_output_directions, outer):
        attrs = {"scan_input_axes": scan_input_axes, "scan_input_directions": scan_input_directions}
        n_state, in_axes, in_dirs = self._layout(len(values), num_scan_inputs, attrs)
        states = list(values[:n_state])
        scans = [np.asarray(x) for x in values[n_state:]]
        axes = [a % x.ndim for a, x in zip(in_axes, scans)]
        lengths = {x.shape[a] for x, a in zip(scans, axes)}
        if len(lengths) != 1:
            raise ShapeError(f"Scan: the scan inputs have different lengths {sorted(lengths)}")
        length = lengths.pop()
        body_types = _output_types(body)[n_state:]
        collected: list[list[np.ndarray]] = [[] for _ in body_types]
        for t in range(length):
            slices = [np.take(x, length - 1 - t if d else t, axis=a) for x, a, d in zip(scans, axes, in_dirs)]
            outs = run_graph(body, states + slices, outer)
            states = outs[:n_state]
            for k, value in enumerate(outs[n_state:]):
                collected[k].append(np.asarray(value))
        out_axes = list(scan_output_axes or [0] * len(collected))
        out_dirs = list(scan_output_directions or [0] * len(collected))
        results = []
        for slices, t, axis, direction in zip(collected, body_types, out_axes, out_dirs):
            stacked = _stack(slices[::-1] if direction else slices, t)
            results.append(np.moveaxis(stacked, 0, axis % stacked.ndim))
        return tuple(states + results)
