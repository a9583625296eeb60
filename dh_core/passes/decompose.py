"""Replace a composite node by the core-op nodes its OpDef emits."""
from __future__ import annotations

from ..dtypes import name_of
from ..errors import GraphError
from ..ir import Graph, Node, TensorType
from ..ops import registry
from ..ops.base import Decomposer


def decompose_node(graph: Graph, node: Node, taken: set[str]) -> list[Node]:
    """The nodes replacing ``node`` (new initializers are added to ``graph``).

    ``taken`` holds every value and node name in use and is updated with the new ones.
    """
    opdef = registry.find(node.op, node.domain)
    if opdef is None or not opdef.composite:
        raise GraphError(f"{node.op} has no decomposition", node.name)

    def fresh(base: str) -> str:
        i = 0
        while f"{base}_{i}" in taken:
            i += 1
        taken.add(f"{base}_{i}")
        return f"{base}_{i}"

    types = [graph.value_types.get(n) if n else None for n in node.inputs]
    constants = [graph.initializers.get(n) if n else None for n in node.inputs]
    d = Decomposer(node, types, opdef.full_attrs(node), constants, fresh)
    opdef.decompose(d)
    graph.initializers.update(d.initializers)
    for name, arr in d.initializers.items():
        graph.value_types[name] = TensorType(name_of(arr.dtype), arr.shape)
    return d.nodes


def names_in_use(graph: Graph) -> set[str]:
    taken = set(graph.input_names) | set(graph.initializers)
    for n in graph.walk():
        taken.update(o for o in n.outputs if o)
        taken.add(n.name)
    return taken
