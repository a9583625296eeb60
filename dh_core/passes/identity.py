"""Remove Identity nodes by renaming: readers of the output read the input instead."""
from __future__ import annotations

from ..ir import Graph, rename_named_values, subgraphs


def remove_identities(graph: Graph) -> Graph:
    """Drop, in place, the Identity nodes of ``graph`` (not of its subgraphs) whose
    removal keeps every graph input and output name; returns the graph."""
    for node in [n for n in graph.nodes if n.op == "Identity" and not n.domain]:
        source, target = node.inputs[0], node.outputs[0]
        if target not in graph.output_names:
            graph.nodes.remove(node)
            _rename(graph, target, source)
            graph.value_types.pop(target, None)
        elif _renamable(graph, source):
            graph.nodes.remove(node)
            _rename(graph, source, target)
            graph.value_types.pop(source, None)
    return graph


def _renamable(graph: Graph, name: str) -> bool:
    """True when ``name`` is an intermediate of this graph (made by one of its nodes)."""
    outer = set(graph.input_names) | set(graph.output_names) | set(graph.initializers)
    return name not in outer and any(name in n.outputs for n in graph.nodes)


def _rename(graph: Graph, old: str, new: str) -> None:
    """Every use and definition of ``old`` in ``graph`` and its subgraphs becomes ``new``."""
    for node in graph.nodes:
        node.inputs = [new if name == old else name for name in node.inputs]
        node.outputs = [new if name == old else name for name in node.outputs]
        rename_named_values(node, old, new)
        for sub in subgraphs(node):
            _rename(sub, old, new)
            for value in sub.outputs:
                if value.name == old:
                    value.name = new
