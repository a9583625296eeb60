"""Dead-code elimination: drop nodes and initializers no output depends on."""
from __future__ import annotations

from ..ir import Graph, node_reads


def eliminate_dead_code(graph: Graph) -> Graph:
    """Remove, in place, nodes none of whose outputs is needed, and unused initializers."""
    needed = set(graph.output_names)
    kept = []
    for node in reversed(graph.nodes):
        if any(o in needed for o in node.outputs if o):
            kept.append(node)
            needed.update(node_reads(node))
    graph.nodes = kept[::-1]
    graph.initializers = {k: v for k, v in graph.initializers.items() if k in needed}
    return graph
