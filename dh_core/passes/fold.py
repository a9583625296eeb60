"""Constant folding: nodes whose inputs are all constants become initializers."""
from __future__ import annotations

import numpy as np

from ..dtypes import name_of, to_numpy
from ..ir import Graph, TensorType, subgraphs
from ..ops import registry

NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Bernoulli", "Multinomial"}


GROWTH_FLOOR_BYTES = 1 << 20
"""Outputs up to this size may always be folded, whatever ``max_growth`` says."""


def fold_constants(graph: Graph, max_elements: int = 1 << 24, max_growth: float | None = None) -> Graph:
    """Evaluate, in place, nodes with only constant inputs (and Shape of a static input)
    with the numpy references; their outputs become initializers (tensor outputs only:
    a constant sequence or optional stays a node).

    Nodes whose outputs hold more than ``max_elements`` elements stay, and with
    ``max_growth`` so do those whose outputs take more than ``max_growth`` times the
    bytes of their inputs (and over 1 MiB): a ConstantOfShape that makes a large weight
    is smaller in a file than the weight."""
    kept = []
    for node in graph.nodes:
        values = _constant_inputs(graph, node)
        if values is None or node.op in NEVER_FOLD or subgraphs(node):
            kept.append(node)
            continue
        opdef = registry.find(node.op, node.domain)
        results = opdef.run_reference(node, values)
        if (not all(isinstance(r, np.ndarray) for r in results)
                or sum(r.size for r in results) > max_elements or _grows(values, results, max_growth)):
            kept.append(node)
            continue
        for name, value in zip(node.outputs, results):
            if name:
                graph.initializers[name] = value
                graph.value_types[name] = TensorType(name_of(value.dtype), value.shape)
    graph.nodes = kept
    return graph


def _grows(values: list, results: list, max_growth: float | None) -> bool:
    if max_growth is None:
        return False
    out = sum(r.nbytes for r in results)
    return out > GROWTH_FLOOR_BYTES and out > max_growth * sum(v.nbytes for v in values if v is not None)


def _constant_inputs(graph: Graph, node) -> list | None:
    if node.op == "Shape" and not node.domain:
        t = graph.value_types.get(node.inputs[0])
        if t is not None and t.is_static:
            return [np.zeros(t.shape, dtype=to_numpy(t.dtype))]
        return None
    if registry.find(node.op, node.domain) is None:
        return None
    values = []
    for name in node.inputs:
        if not name:
            values.append(None)
        elif name in graph.initializers:
            values.append(graph.initializers[name])
        else:
            return None
    return values
