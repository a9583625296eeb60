"""The forward computation a Gradient node differentiates, cut out of its enclosing graph.

Gradient names tensors of the graph around it: ``y`` is computed from the independent
variables ``xs`` (differentiated) and ``zs`` (not). Its body is a copy of the nodes on
the paths from them to y, with inputs xs + zs and output y, its values renamed so that
they do not clash with the enclosing graph's. What else those nodes read (initializers,
graph inputs, values that do not depend on xs or zs) stays an outer read, as in a Loop
body.
"""
from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from dh_core.errors import GraphError
from dh_core.ir import Graph, Node, Value, ValueType, node_reads


def gradient_body(node: Node, nodes: Sequence[Node], defined: Collection[str],
                  types: Mapping[str, ValueType], fresh_value: Callable[[str], str],
                  fresh_node: Callable[[str], str]) -> Graph:
    """The body of Gradient ``node`` among the enclosing graph's ``nodes``.

    ``defined`` names the values the graph has besides node outputs (inputs,
    initializers, outer scopes), ``types`` their known types; ``fresh_value`` and
    ``fresh_node`` return names not used anywhere in the model."""
    label = node.name or node.op
    xs, zs, y = _names(node, label)
    known = set(defined) | {o for n in nodes for o in n.outputs if o and n is not node}
    for name in [*xs, *zs, y]:
        if name not in known:
            raise GraphError(f"Gradient names '{name}', which the graph does not define", label)
    sources = set(xs) | set(zs)
    slice_nodes = _between(sources, y, [n for n in nodes if n is not node], label)
    renamed = {name: fresh_value(f"{label}/{name}") for name in [*xs, *zs]}
    renamed.update({o: fresh_value(f"{label}/{o}") for n in slice_nodes for o in n.outputs if o})
    body_nodes = [Node(n.op, [renamed.get(i, i) for i in n.inputs], [renamed.get(o, o) for o in n.outputs],
                       dict(n.attrs), fresh_node(f"{label}/{n.name or n.op}"), n.domain) for n in slice_nodes]
    inputs = [Value(renamed[name], types.get(name)) for name in [*xs, *zs]]
    return Graph(body_nodes, inputs, [Value(renamed[y], types.get(y))], name=f"{label}_body")


def _names(node: Node, label: str) -> tuple[list[str], list[str], str]:
    """xs, zs and y, checked against the node's inputs and outputs."""
    xs, zs, y = list(node.attrs.get("xs") or []), list(node.attrs.get("zs") or []), node.attrs.get("y")
    if not xs or not y:
        raise GraphError("Gradient needs attributes 'xs' and 'y'", label)
    if len(set(xs + zs)) != len(xs + zs):
        raise GraphError(f"Gradient names a tensor twice in xs {xs} and zs {zs}", label)
    if len(node.inputs) != len(xs) + len(zs):
        raise GraphError(f"Gradient has {len(node.inputs)} inputs for {len(xs)} xs and {len(zs)} zs", label)
    if len(node.outputs) > len(xs):
        raise GraphError(f"Gradient has {len(node.outputs)} outputs for {len(xs)} xs", label)
    return xs, zs, y


def _between(sources: set[str], y: str, nodes: Sequence[Node], label: str) -> list[Node]:
    """The nodes on paths from ``sources`` to ``y``, in graph order. A node that makes
    one of the sources is cut off: the source is an independent variable."""
    depends = set(sources)
    reachable = []
    for n in nodes:
        if any(o in sources for o in n.outputs):
            continue
        if any(name in depends for name in node_reads(n)):
            depends.update(o for o in n.outputs if o)
            reachable.append(n)
    if y not in depends:
        raise GraphError(f"Gradient's y '{y}' does not depend on xs or zs", label)
    needed = {y}
    kept = []
    for n in reversed(reachable):
        if any(o in needed for o in n.outputs):
            kept.append(n)
            needed.update(node_reads(n))
    return kept[::-1]
