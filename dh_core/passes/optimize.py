"""The graph optimizations of ``dh convert --optimize``, in order."""
from __future__ import annotations

from ..ir import Graph
from .batchnorm import fold_batch_norm
from .dce import eliminate_dead_code
from .fold import fold_constants
from .identity import remove_identities
from .infer import infer_types

MAX_GROWTH = 16
"""A constant is folded unless its value takes over 16 times the bytes of its inputs
(and over 1 MiB): the optimized file must not balloon with generated weights."""


def optimize(graph: Graph) -> Graph:
    """Verify and type the graph, then fold constants, remove Identity nodes, fold
    BatchNormalization into the linear node before it and drop dead nodes; in place.
    Types are inferred again at the end: folded constants make more shapes known."""
    graph.verify()
    infer_types(graph)
    fold_constants(graph, max_growth=MAX_GROWTH)
    remove_identities(graph)
    fold_batch_norm(graph)
    eliminate_dead_code(graph)
    return infer_types(graph)
