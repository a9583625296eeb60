"""Assign nodes to backends and cut the graph into partitions.

Each node goes to the first backend, in the user's order, that supports it. A
composite no backend supports is decomposed and its parts tried again. What is left
goes to the CPU backend under the fallback policy. Shape computations stay on the
host. Consecutive nodes on one backend form a partition; values that cross between
memory spaces get a copy, which the plan lists.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import UnsupportedOpError
from .ir import Graph, Node, TensorType, node_reads, type_key
from .ops import registry
from .passes.decompose import decompose_node, names_in_use
from .passes.infer import infer_node

FALLBACKS = ("allow", "warn", "error")
HOST_OPS = {"Shape", "Size"}
"""Ops whose result is small metadata: always computed on the host."""


class FallbackWarning(UserWarning):
    """A node fell back to the CPU backend."""


def memory_space(backend: Any) -> str:
    """Where a backend's buffers live: "host" for numpy-backed backends."""
    return "host" if getattr(backend, "host_memory", False) else backend.name


@dataclass
class Partition:
    backend: Any
    nodes: list[Node] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Copy:
    value: str
    source: str
    target: str
    before: int
    """Index of the partition that needs the copy."""


@dataclass
class Plan:
    """Which backend runs each node and where copies are inserted."""

    partitions: list[Partition]
    copies: list[Copy]
    fallbacks: list[str]

    def backend_of(self) -> dict[str, str]:
        return {n.name: p.backend.name for p in self.partitions for n in p.nodes}

    def to_dict(self) -> dict:
        return {
            "partitions": [
                {"backend": p.backend.name, "nodes": [{"name": n.name, "op": n.op} for n in p.nodes],
                 "inputs": p.inputs, "outputs": p.outputs}
                for p in self.partitions],
            "copies": [{"value": c.value, "from": c.source, "to": c.target, "before_partition": c.before}
                       for c in self.copies],
            "fallbacks": self.fallbacks,
        }

    def __str__(self) -> str:
        lines = [f"plan: {sum(len(p.nodes) for p in self.partitions)} nodes in "
                 f"{len(self.partitions)} partitions, {len(self.copies)} copies"]
        for i, p in enumerate(self.partitions):
            for c in (c for c in self.copies if c.before == i):
                lines.append(f"  copy %{c.value}: {c.source} -> {c.target}")
            lines.append(f"  partition {i} on {p.backend.name} ({len(p.nodes)} nodes)")
            for n in p.nodes:
                flag = "  (fallback)" if n.name in self.fallbacks else ""
                lines.append(f"    {n.name}: {n.op}{flag}")
        return "\n".join(lines)


def assign(graph: Graph, backends: Sequence[Any], cpu: Any | None, fallback: str) -> tuple[list[tuple[Node, Any]], list[str]]:
    """Choose a backend per node, decomposing composites no backend claims.

    Rewrites ``graph.nodes`` to the decomposed node list; returns (node, backend)
    pairs in order and the names of nodes that fell back to the CPU.
    """
    taken = names_in_use(graph)
    host_values = set()
    queue = list(graph.nodes)
    placed: list[tuple[Node, Any]] = []
    fallbacks: list[str] = []
    while queue:
        node = queue.pop(0)
        types = [graph.value_types.get(n) if n else None for n in node.inputs]
        if cpu is not None and _is_host_computation(node, host_values, graph) and cpu.supports(node, types):
            host_values.update(o for o in node.outputs if o)
            placed.append((node, cpu))
            continue
        chosen = next((b for b in backends if b.supports(node, types)), None)
        if chosen is None:
            parts = _decomposition_placeable(graph, node, backends, taken)
            if parts is not None:
                queue[:0] = parts
                continue
            chosen = _fallback(node, types, backends, cpu, fallback)
            fallbacks.append(node.name)
        placed.append((node, chosen))
    graph.nodes = [n for n, _ in placed]
    return placed, fallbacks


def _decomposition_placeable(graph: Graph, node: Node, backends, taken: set[str]) -> list[Node] | None:
    """The decomposition of a composite when the listed backends can run all of it
    (decomposing nested composites too); None otherwise, leaving the graph unchanged."""
    opdef = registry.find(node.op, node.domain)
    if opdef is None or not opdef.composite or not backends:
        return None
    trial = graph.copy()
    trial_taken = set(taken)
    pending = decompose_node(trial, node, trial_taken)
    done: list[Node] = []
    while pending:
        part = pending.pop(0)
        infer_node(trial, part)
        types = [trial.value_types.get(n) if n else None for n in part.inputs]
        if any(b.supports(part, types) for b in backends):
            done.append(part)
            continue
        part_def = registry.find(part.op, part.domain)
        if part_def is None or not part_def.composite:
            return None
        pending[:0] = decompose_node(trial, part, trial_taken)
    graph.initializers.update(trial.initializers)
    graph.value_types.update(trial.value_types)
    taken.update(trial_taken)
    return done


def _is_host_computation(node: Node, host_values: set[str], graph: Graph) -> bool:
    if node.op in HOST_OPS:
        return True
    reads = node_reads(node)
    if not reads or not all(n in host_values or n in graph.initializers for n in reads):
        return False
    if not any(n in host_values for n in reads):
        return False
    out_types = [graph.value_types.get(o) for o in node.outputs if o]
    return all(isinstance(t, TensorType) and t.dtype == "int64" for t in out_types)


def _fallback(node: Node, types, backends, cpu, policy: str):
    tried = [b.name for b in backends]
    dtypes = [type_key(t) for t in types if t is not None]
    if cpu is None or any(b is cpu for b in backends) or policy == "error" or not cpu.supports(node, types):
        if cpu is not None and not any(b is cpu for b in backends) and policy != "error":
            tried.append(cpu.name)
        raise UnsupportedOpError(node.name or node.op, node.op, dtypes, tried)
    if policy == "warn":
        warnings.warn(f"node '{node.name}' ({node.op}) runs on the CPU: "
                      f"not supported by {', '.join(tried)}", FallbackWarning, stacklevel=4)
    return cpu


def split(graph: Graph, placed: list[tuple[Node, Any]], cpu: Any | None) -> list[Partition]:
    """Group consecutive nodes on one backend; partitions smaller than their backend's
    ``min_partition_size`` move to the CPU when it supports all their nodes."""
    parts = _group(placed)
    if cpu is not None:
        regrouped = []
        for p in parts:
            small = len(p.nodes) < getattr(p.backend, "min_partition_size", 1)
            if small and p.backend is not cpu and all(
                    cpu.supports(n, [graph.value_types.get(i) if i else None for i in n.inputs]) for n in p.nodes):
                regrouped.extend((n, cpu) for n in p.nodes)
            else:
                regrouped.extend((n, p.backend) for n in p.nodes)
        parts = _group(regrouped)
    _wire(graph, parts)
    return parts


def _group(placed: list[tuple[Node, Any]]) -> list[Partition]:
    parts: list[Partition] = []
    for node, backend in placed:
        if not parts or parts[-1].backend is not backend:
            parts.append(Partition(backend))
        parts[-1].nodes.append(node)
    return parts


def _wire(graph: Graph, parts: list[Partition]) -> None:
    """Fill each partition's boundary inputs and the outputs that later code reads."""
    needed_later: set[str] = set(graph.output_names)
    for p in reversed(parts):
        produced = {o for n in p.nodes for o in n.outputs if o}
        p.outputs = sorted(produced & needed_later)
        reads: list[str] = []
        for n in p.nodes:
            for name in node_reads(n):
                if name not in produced and name not in graph.initializers and name not in reads:
                    reads.append(name)
        p.inputs = reads
        needed_later.update(reads)


def copies_for(graph: Graph, parts: list[Partition]) -> list[Copy]:
    """The copies each partition needs for values living in another memory space."""
    home = {name: "host" for name in graph.input_names}
    out: list[Copy] = []
    for i, p in enumerate(parts):
        space = memory_space(p.backend)
        for name in p.inputs:
            if home[name] != space:
                out.append(Copy(name, home[name], space, i))
        for name in p.outputs:
            home[name] = space
    for name in graph.output_names:
        if name in home and home[name] != "host":
            out.append(Copy(name, home[name], "host", len(parts)))
    return out
