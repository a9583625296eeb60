"""Constant folding: nodes whose inputs are all constants become initializers."""
from __future__ import annotations

import numpy as np

from .. import dtypes as dt
from ..ir import Graph, TensorType, subgraphs
from ..ops import registry

NEVER_FOLD = {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
              "Bernoulli", "Multinomial"}


def fold_constants(graph: Graph, max_elements: int = 1 << 24) -> Graph:
    """Evaluate, in place, nodes with only constant inputs (and Shape of a static input)
    with the numpy references; their outputs become initializers."""
    kept = []
    for node in graph.nodes:
        values = _constant_inputs(graph, node)
        if values is None or node.op in NEVER_FOLD or subgraphs(node):
            kept.append(node)
            continue
        opdef = registry.find(node.op, node.domain)
        results = opdef.run_reference(node, values)
        if sum(r.size for r in results) > max_elements:
            kept.append(node)
            continue
        for name, value in zip(node.outputs, results):
            if name:
                graph.initializers[name] = value
                graph.value_types[name] = TensorType(dt.of(value), value.shape)
    graph.nodes = kept
    return graph


def _constant_inputs(graph: Graph, node) -> list | None:
    if node.op == "Shape" and not node.domain:
        t = graph.value_types.get(node.inputs[0])
        if t is not None and t.is_static:
            return [np.zeros(t.shape, dtype=dt.to_numpy(t.dtype))]
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
