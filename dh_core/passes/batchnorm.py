"""Fold an inference BatchNormalization into the Conv, Gemm or MatMul(+Add) before it.

``y = (x - mean) / sqrt(var + epsilon) * scale + bias`` is ``x * s + t`` per channel
(``s = scale / sqrt(var + epsilon)``, ``t = bias - mean * s``); when ``x`` comes from
a linear node with constant weights that nothing else reads, ``s`` goes into the
weights and ``t`` into the bias, and the BatchNormalization disappears. The new
weights are computed in float64 and stored in the weights' dtype.
"""
from __future__ import annotations

import numpy as np

from ..ir import Graph, Node, TensorType

FLOATS = ("float16", "float32", "float64")


def fold_batch_norm(graph: Graph) -> Graph:
    """Fold, in place, every BatchNormalization whose input is the only use of a Conv,
    Gemm, MatMul or MatMul+Add output with constant weights (and constant BN
    parameters); returns the graph. Unused initializers stay for dead-code elimination."""
    folder = _Folder(graph)
    for bn in [n for n in graph.nodes if n.op == "BatchNormalization" and not n.domain]:
        folder.fold(bn)
    return graph


class _Folder:
    def __init__(self, graph: Graph):
        self.graph = graph
        self.taken = set(graph.initializers) | set(graph.input_names)
        for n in graph.walk():
            self.taken.update(o for o in n.outputs if o)

    def fold(self, bn: Node) -> None:
        g = self.graph
        if len([o for o in bn.outputs if o]) != 1 or bn.attrs.get("training_mode", 0):
            return
        params = [g.initializers.get(name) for name in bn.inputs[1:5]]
        if len(params) != 4 or any(p is None or p.ndim != 1 for p in params):
            return
        scale, bias, mean, var = (p.astype(np.float64) for p in params)
        s = scale / np.sqrt(var + bn.attrs.get("epsilon", 1e-5))
        t = bias - mean * s
        producer = self.sole_producer(bn.inputs[0])
        if producer is None:
            return
        if producer.op == "Conv":
            done = self.into_conv(producer, s, t)
        elif producer.op == "Gemm":
            done = self.into_gemm(producer, s, t)
        elif producer.op in ("MatMul", "Add") and self.rank(bn.inputs[0]) == 2:
            done = self.into_matmul(producer, bn, s, t)
        else:
            done = False
        if done:
            self.bypass(bn)

    # -- producers ---------------------------------------------------------------
    def into_conv(self, conv: Node, s: np.ndarray, t: np.ndarray) -> bool:
        w = self.weight(conv, 1)
        if w is None or w.ndim < 3 or w.shape[0] != s.size:
            return False
        b = self.weight(conv, 2) if len(conv.inputs) > 2 and conv.inputs[2] else np.zeros(s.size, w.dtype)
        if b is None or b.shape != (s.size,):
            return False
        w_new = w * s.reshape((-1,) + (1,) * (w.ndim - 1))
        conv.inputs[1:] = [self.const(conv, "weight", w_new, w.dtype), self.const(conv, "bias", b * s + t, w.dtype)]
        return True

    def into_gemm(self, gemm: Node, s: np.ndarray, t: np.ndarray) -> bool:
        w = self.weight(gemm, 1)
        if w is None or w.ndim != 2:
            return False
        trans = gemm.attrs.get("transB", 0)
        if w.shape[0 if trans else 1] != s.size:
            return False
        c = self.weight(gemm, 2) if len(gemm.inputs) > 2 and gemm.inputs[2] else np.zeros(s.size, w.dtype)
        if c is None or c.ndim > 2 or (c.ndim and c.shape[-1] not in (1, s.size)):
            return False
        w_new = w * (s[:, None] if trans else s[None, :])
        c_new = gemm.attrs.get("beta", 1.0) * c * s + t
        gemm.inputs[1:] = [self.const(gemm, "weight", w_new, w.dtype), self.const(gemm, "bias", c_new, w.dtype)]
        gemm.attrs["beta"] = 1.0
        return True

    def into_matmul(self, node: Node, bn: Node, s: np.ndarray, t: np.ndarray) -> bool:
        """MatMul(x, W) [+ b] with a 2-D output: W's columns scale; t joins b (or a new Add)."""
        if node.op == "Add":
            matmul = self.sole_producer(node.inputs[0])
            b = self.weight(node, 1)
            if matmul is None or matmul.op != "MatMul" or b is None or b.shape not in ((s.size,), (1, s.size)):
                return False
        else:
            matmul, b = node, None
        w = self.weight(matmul, 1)
        if w is None or w.ndim != 2 or w.shape[1] != s.size:
            return False
        matmul.inputs[1] = self.const(matmul, "weight", w * s, w.dtype)
        if b is not None:
            node.inputs[1] = self.const(node, "bias", b * s + t, w.dtype)
            return True
        bias = self.const(matmul, "bias", t, w.dtype)
        add = Node("Add", [self.fresh(f"{matmul.outputs[0]}_scaled"), bias], [matmul.outputs[0]], {},
                   self.fresh(f"{bn.name or matmul.name}_bias"))
        matmul.outputs[0] = add.inputs[0]
        self.graph.nodes.insert(self.graph.nodes.index(matmul) + 1, add)
        out_type = self.graph.value_types.get(add.outputs[0])
        if out_type is not None:
            self.graph.value_types[add.inputs[0]] = out_type
        return True

    # -- helpers ------------------------------------------------------------------
    def sole_producer(self, name: str) -> Node | None:
        """The node producing ``name`` when ``name`` has exactly one reader and is no graph output."""
        g = self.graph
        if name in g.output_names or len(g.consumers().get(name, [])) != 1:
            return None
        node = g.producers().get(name)
        if node is None or node.domain or len([o for o in node.outputs if o]) != 1:
            return None
        return node

    def weight(self, node: Node, position: int) -> np.ndarray | None:
        """A float constant input of ``node``, or None."""
        if position >= len(node.inputs):
            return None
        value = self.graph.initializers.get(node.inputs[position])
        return value if value is not None and value.dtype.name in FLOATS else None

    def rank(self, name: str) -> int | None:
        t = self.graph.value_types.get(name)
        return None if t is None else t.rank

    def const(self, node: Node, what: str, value: np.ndarray, dtype: np.dtype) -> str:
        name = self.fresh(f"{node.name or node.outputs[0]}_{what}_folded")
        array = np.asarray(value, dtype=dtype)
        self.graph.initializers[name] = array
        self.graph.value_types[name] = TensorType(array.dtype.name, array.shape)
        return name

    def fresh(self, base: str) -> str:
        name, k = base, 0
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.taken.add(name)
        return name

    def bypass(self, bn: Node) -> None:
        """Drop ``bn``: its input's producer now writes ``bn``'s output."""
        g = self.graph
        source = bn.inputs[0]
        producer = g.producers()[source]
        producer.outputs[producer.outputs.index(source)] = bn.outputs[0]
        g.nodes.remove(bn)
        g.value_types.pop(source, None)
