"""Fusion of elementwise nodes into one broadcasting kernel.

Before a partition is lowered, :func:`fuse` replaces each group of connected
elementwise nodes (ops of the ``OPS`` table) by one node of domain ``DOMAIN``: one
kernel launch that reads the group's outside inputs through their broadcast strides,
evaluates one ``OPS`` expression per node with the intermediates kept in registers, and
writes only the group's last value. A node joins the group of its consumers when its
output is not a partition output, every consumer is in that one group, and the group
computes in the same dtype (a comparison's bool output may feed a Where of its dtype).
Each node's expression is wrapped in a function with the parameter and return types of
its own kernel, so the fused kernel performs the same float operations in the same
order and its results are bit-identical to the unfused kernels'.

``DH_OPENCL_FUSION=0`` turns fusion off (each node is then its own kernel).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dh_core.ir import Graph, Node, TensorType, node_reads, type_key
from dh_core.ops import registry

from .elementwise import (OPS, broadcast_launcher, broadcast_source, expression, helpers_source, input_ctypes,
                          local_ctype, output_ctype, rounded)

DOMAIN = "dh.opencl.fused"
"""The domain of the nodes that stand for a fused group."""
MAX_INPUTS = 16
"""The most outside inputs one fused kernel reads."""

Supports = Callable[[Node, list], bool]


def enabled() -> bool:
    """False when ``DH_OPENCL_FUSION=0``."""
    return os.environ.get("DH_OPENCL_FUSION", "1").strip() != "0"


@dataclass(frozen=True)
class Member:
    """One node of a group: its expression over parameters of C types ``params``;
    ``sources`` gives, per parameter, ``("input", k)`` for outside input ``k`` or
    ``("member", j)`` for the value of member ``j``."""

    op: str
    expr: str
    params: tuple[str, ...]
    out: str
    sources: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class FusedGroup:
    """A fused group: its compute dtype, the C buffer types of its outside inputs,
    its members in order (the last one's value is the output) and the output dtype."""

    dtype: str
    input_ctypes: tuple[str, ...]
    members: tuple[Member, ...]
    out_dtype: str

    def __str__(self) -> str:
        return "[" + ", ".join(m.op for m in self.members) + "]"

    def source(self) -> str:
        """The OpenCL C source of the fused kernel."""
        helpers = "".join(dict.fromkeys(helpers_source(m.op, self.dtype) for m in self.members))
        functions, body = [], []
        for j, m in enumerate(self.members):
            params = ", ".join(f"{t} {n}" for t, n in zip(m.params, "abcdefgh"))
            held = local_ctype(m.out)
            functions.append(f"inline {held} f{j}({params}) {{ return {rounded(m.out, f'({held})({m.expr})')}; }}\n")
            args = ", ".join(f"x{k}" if kind == "input" else f"v{k}" for kind, k in m.sources)
            body.append(f"    {held} v{j} = f{j}({args});\n")
        inputs = [(t, f"x{k}") for k, t in enumerate(self.input_ctypes)]
        out = self.members[-1].out
        return broadcast_source(self.dtype, helpers + "".join(functions), inputs, out,
                                f"v{len(self.members) - 1}", "".join(body))


@dataclass(frozen=True)
class _Candidate:
    """A fusable node as its own kernel would compile it."""

    dtype: str
    params: tuple[str, ...]
    ctypes: tuple[str, ...]
    out: str
    expr: str
    inputs: tuple[str, ...]


def _candidate(node: Node, graph: Graph, supports: Supports) -> _Candidate | None:
    if node.domain or node.op not in OPS or len(node.outputs) != 1:
        return None
    types = [graph.value_types.get(n) if n else None for n in node.inputs]
    present_types = [t for t in types if t is not None]
    if len(present_types) != len(node.inputs) - node.inputs.count(""):
        return None
    if not all(isinstance(t, TensorType) for t in present_types) or not supports(node, types):
        return None
    spec = OPS[node.op]
    dtype = type_key(present_types[1] if spec.bool_cond else present_types[0])
    exponent = type_key(present_types[1]) if spec.exponent_dtypes else None
    present = [n != "" for n in node.inputs]
    arity = sum(present)
    ctypes = input_ctypes(node.op, dtype, arity, exponent)
    attrs = registry.get(node.op).full_attrs(node)
    return _Candidate(dtype, tuple(local_ctype(t) for t in ctypes), tuple(ctypes),
                      output_ctype(node.op, dtype), expression(node.op, arity, attrs, present, dtype),
                      tuple(n for n in node.inputs if n))


def _groups(graph: Graph, candidates: Sequence[_Candidate | None]) -> list[list[int]]:
    """Groups (node indices in order) of two or more nodes to fuse, consumers first:
    a node joins the group of its consumers when it may."""
    users: dict[str, list[int]] = {}
    for i, node in enumerate(graph.nodes):
        for name in set(node_reads(node)) - {""}:
            users.setdefault(name, []).append(i)
    outputs = set(graph.output_names)
    group_of: dict[int, int] = {}
    members: list[list[int]] = []
    outside: list[set[str]] = []
    for i in reversed(range(len(graph.nodes))):
        c = candidates[i]
        if c is None:
            continue
        out = graph.nodes[i].outputs[0]
        readers = users.get(out, [])
        groups = {group_of.get(r, -1) for r in readers}  # -1: not fusable
        g = next(iter(groups)) if len(groups) == 1 else -1
        if out in outputs or not readers or g < 0 or candidates[readers[0]].dtype != c.dtype:
            g = -1
        elif any(p != local_ctype(c.out) for r in readers for p, name in zip(candidates[r].params, candidates[r].inputs)
                 if name == out):
            g = -1
        elif len((outside[g] - {out}) | set(c.inputs)) > MAX_INPUTS:
            g = -1
        if g < 0:
            g = len(members)
            members.append([])
            outside.append(set(c.inputs))
        else:
            outside[g] = (outside[g] - {out}) | set(c.inputs)
        group_of[i] = g
        members[g].append(i)
    return [sorted(m) for m in members if len(m) > 1]


def _fused_node(graph: Graph, indices: list[int], candidates: Sequence[_Candidate | None]) -> Node:
    produced = {graph.nodes[i].outputs[0]: j for j, i in enumerate(indices)}
    inputs: list[str] = []
    ctypes: list[str] = []
    group_members = []
    for i in indices:
        node, c = graph.nodes[i], candidates[i]
        sources = []
        for name, ctype in zip(c.inputs, c.ctypes):
            if name in produced:
                sources.append(("member", produced[name]))
                continue
            if name not in inputs:
                inputs.append(name)
                ctypes.append(ctype)
            sources.append(("input", inputs.index(name)))
        group_members.append(Member(node.op, c.expr, c.params, c.out, tuple(sources)))
    sink, dtype = graph.nodes[indices[-1]], candidates[indices[-1]].dtype
    out_dtype = "bool" if OPS[sink.op].bool_out else dtype
    group = FusedGroup(dtype, tuple(ctypes), tuple(group_members), out_dtype)
    name = "+".join(graph.nodes[i].name or graph.nodes[i].op for i in indices)
    return Node("Fused", inputs, [sink.outputs[0]], {"group": group}, name, DOMAIN)


def fuse(graph: Graph, supports: Supports) -> Graph:
    """``graph`` with each fusable group of elementwise nodes replaced by one node of
    domain :data:`DOMAIN` at the place of the group's last node (``graph`` itself when
    nothing fuses); ``supports(node, input types)`` says which nodes have a kernel."""
    candidates = [_candidate(n, graph, supports) for n in graph.nodes]
    groups = _groups(graph, candidates)
    if not groups:
        return graph
    replaced: dict[int, Node | None] = {}
    for indices in groups:
        for i in indices[:-1]:
            replaced[i] = None
        replaced[indices[-1]] = _fused_node(graph, indices, candidates)
    fused = graph.copy()
    fused.nodes = [replaced.get(i, node) for i, node in enumerate(fused.nodes)]
    fused.nodes = [n for n in fused.nodes if n is not None]
    return fused


def fused_factory(rt, node: Node) -> Callable[..., object]:
    """The kernel of a fused node: one launch over its outside inputs."""
    group: FusedGroup = node.attrs["group"]
    return broadcast_launcher(rt, group.source(), np.dtype(group.out_dtype))

