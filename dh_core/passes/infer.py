"""Shape and type inference over a graph, node by node."""
from __future__ import annotations

from ..errors import GraphError, ShapeError
from ..ir import Graph, Node, TensorType, free_names, subgraphs
from ..ops import registry
from ..ops.base import InferContext


def infer_node(graph: Graph, node: Node) -> None:
    """Infer one node's output types into ``graph.value_types`` (dtype checks included)."""
    opdef = registry.find(node.op, node.domain)
    if opdef is None:
        raise GraphError(f"unknown op {node.op}", node.name)
    types = [graph.value_types.get(n) if n else None for n in node.inputs]
    opdef.check_dtypes(node, types)
    for sub in subgraphs(node):
        infer_subgraph(sub, graph.value_types)
    constants = [graph.initializers.get(n) if n else None for n in node.inputs]
    ctx = InferContext(node, types, opdef.full_attrs(node), constants)
    try:
        out_types = opdef.infer(ctx)
    except ShapeError as exc:
        if exc.node is None:
            raise ShapeError(str(exc), node.name or node.op) from None
        raise
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise ShapeError(f"{node.op}: {exc}", node.name or node.op) from exc
    for name, t in zip(node.outputs, out_types):
        if name and t is not None:
            graph.value_types[name] = t


def infer_types(graph: Graph) -> Graph:
    """Infer every node's output types in place; returns the graph."""
    for node in graph.nodes:
        infer_node(graph, node)
    for v in graph.outputs:
        if v.name in graph.value_types:
            v.type = merge_type(v.type, graph.value_types[v.name])
    return graph


def infer_subgraph(sub: Graph, outer_types: dict) -> None:
    """Infer a subgraph's types in place, seeing the types of the outer values it reads
    (which are not kept in the subgraph's own table). A subgraph that does not type-check
    for these inputs keeps the types found so far: it is often the If branch that these
    shapes never take (ONNX's AffineGrid splits 2-D and 3-D work so); if it runs, its
    nodes raise then."""
    seeded = [n for n in dict.fromkeys(free_names(sub)) if n in outer_types and n not in sub.value_types]
    for name in seeded:
        sub.value_types[name] = outer_types[name]
    try:
        infer_types(sub)
    except ShapeError:
        pass
    finally:
        for name in seeded:
            sub.value_types.pop(name, None)


def merge_type(declared: TensorType | None, inferred: TensorType | None) -> TensorType | None:
    """The more specific of a declared and an inferred type."""
    if declared is None or not isinstance(declared, TensorType):
        return inferred or declared
    if inferred is None or declared.shape is not None:
        return declared
    return inferred
