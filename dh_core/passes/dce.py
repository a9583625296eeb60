"""Dead-code elimination: drop nodes and initializers no output depends on, and the
optional outputs nothing reads (a Dropout's mask, a MaxPool's indices), so that
backends see the node as used."""
from __future__ import annotations

from ..ir import Graph, Node, node_reads
from ..ops import registry


def eliminate_dead_code(graph: Graph) -> Graph:
    """Remove, in place, nodes none of whose outputs is needed, unused optional outputs
    of the nodes kept, and unused initializers."""
    needed = set(graph.output_names)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in needed for o in node.outputs if o):
            _drop_unread_optional_outputs(node, needed)
            kept.append(node)
            needed.update(node_reads(node))
    graph.nodes = kept[::-1]
    graph.initializers = {k: v for k, v in graph.initializers.items() if k in needed}
    return graph


def _drop_unread_optional_outputs(node: Node, needed: set[str]) -> None:
    opdef = registry.find(node.op, node.domain)
    if opdef is None or any(p.variadic for p in opdef.outputs) or len(node.outputs) > len(opdef.outputs):
        return
    outputs = [o if o in needed or not param.optional else ""
               for o, param in zip(node.outputs, opdef.outputs)]
    while outputs and not outputs[-1]:
        outputs.pop()
    node.outputs = outputs
