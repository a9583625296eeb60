"""A builder for writing graphs by hand.

    b = GraphBuilder("mlp")
    x = b.input("x", "float32", ("N", 4))
    w = b.constant(np.ones((4, 2), np.float32), name="w")
    y = b.Relu(b.MatMul(x, w))
    b.output(y)
    graph = b.build()
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .ir import DEFAULT_OPSET, Dim, Graph, Node, TensorType, Value


class GraphBuilder:
    """Collects inputs, constants and nodes; ``b.OpName(*inputs, **attrs)`` adds a node.

    A node call returns its output name, or a tuple of names for ops with several
    outputs. ``outputs=`` sets how many outputs (an int) or their names (a list);
    ``name=`` names the node. Pass ``""`` for an omitted optional input.
    """

    def __init__(self, name: str = "graph", opset: int = DEFAULT_OPSET):
        self.name = name
        self.opset = opset
        self._inputs: list[Value] = []
        self._outputs: list[Value] = []
        self._nodes: list[Node] = []
        self._initializers: dict[str, np.ndarray] = {}
        self._used: set[str] = set()
        self._counter = 0

    def _fresh(self, base: str) -> str:
        while True:
            self._counter += 1
            name = f"{base}_{self._counter}"
            if name not in self._used:
                self._used.add(name)
                return name

    def _claim(self, name: str) -> str:
        if name in self._used:
            raise ValueError(f"value name '{name}' is already used")
        self._used.add(name)
        return name

    def input(self, name: str, dtype: str, shape: Sequence[Dim] | None) -> str:
        """Declare a graph input; dims may be ints, symbols ("N") or None."""
        self._inputs.append(Value(self._claim(name), TensorType(dtype, None if shape is None else tuple(shape))))
        return name

    def constant(self, array, name: str | None = None, dtype: str | None = None) -> str:
        """Add an initializer (a constant tensor) and return its name."""
        arr = np.asarray(array, dtype=dtype) if dtype else np.asarray(array)
        key = self._claim(name) if name else self._fresh("const")
        self._initializers[key] = arr
        return key

    def node(self, op: str, *inputs: str, outputs: int | Sequence[str] | None = None,
             name: str | None = None, domain: str = "", **attrs):
        """Add a node and return its output name(s)."""
        if outputs is None:
            outputs = _default_output_count(op, domain)
        if isinstance(outputs, int):
            outs = [self._fresh(op.lower()) for _ in range(outputs)]
        else:
            outs = [self._claim(o) if o else "" for o in outputs]
        node_name = name or self._fresh(op)
        self._nodes.append(Node(op, list(inputs), outs, attrs, node_name, domain))
        return outs[0] if len(outs) == 1 else tuple(outs)

    def __getattr__(self, op: str):
        if not op[:1].isupper():
            raise AttributeError(op)
        return lambda *inputs, **attrs: self.node(op, *inputs, **attrs)

    def output(self, *names: str) -> None:
        """Mark values as graph outputs, in order."""
        self._outputs.extend(Value(n) for n in names)

    def build(self, infer: bool = True) -> Graph:
        """The graph, verified, with types inferred for every value when ``infer``."""
        graph = Graph(self._nodes, self._inputs, self._outputs, self._initializers,
                      self.name, self.opset)
        graph.verify()
        if infer:
            from .passes.infer import infer_types

            infer_types(graph)
        return graph


def _default_output_count(op: str, domain: str) -> int:
    from .ops import registry

    opdef = registry.find(op, domain)
    if opdef is None or not opdef.outputs:
        return 1
    return sum(1 for p in opdef.outputs if not p.optional and not p.variadic) or 1
