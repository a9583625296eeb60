"""Graph rewrites the CPU backend runs on a partition before choosing kernels.

``fuse(graph)`` returns a rewritten copy and the activations fused into nodes:

* Conv followed by inference BatchNormalization, all parameters constant: one Conv with
  folded weight and bias.
* Conv or inference BatchNormalization followed by Mul or Add of a constant that varies
  only along the channel axis: the scale or shift folds into the Conv's weight and bias
  or the BatchNormalization's scale and bias.
* MatMul of two matrices followed by Add of a constant bias: one Gemm.
* Conv, ConvTranspose, Gemm, MatMul, Add, Sum or inference BatchNormalization followed by Relu, LeakyRelu, Clip (constant
  bounds), Sigmoid, HardSigmoid or Tanh: the activation node goes away, the producing node
  writes its output, and ``activations[node.name]`` is a function the backend applies
  in place to that node's result.

A value is fused away only when the one node that reads it is the one fused with its
producer and it is not a graph output, so every graph output keeps its value. Initializers
that no node reads any more are dropped. A backend wraps a fused node's kernel::

    graph, activations = fuse(subgraph)
    base, act = factory(node, types), activations.get(node.name)
    kernel = base if act is None else (lambda *xs: act(base(*xs)))
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dh_core.dtypes import name_of
from dh_core.ir import Graph, Node, TensorType, node_reads

from .conv import node_attrs

Activation = Callable[[np.ndarray], np.ndarray]

PRODUCERS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sum", "BatchNormalization")
"""Ops whose kernels return a fresh array, so an activation may overwrite it."""


def fuse(graph: Graph) -> tuple[Graph, dict[str, Activation]]:
    """Rewrite a copy of ``graph``; returns it with ``{fused node name: activation}``."""
    g = graph.copy()
    _Rewriter(g).run()
    activations = _fuse_activations(g)
    return g, activations


class _Rewriter:
    """Use counts and producers of a graph, kept current while nodes merge."""

    def __init__(self, graph: Graph):
        self.g = graph
        self.producers = graph.producers()
        self.uses = {name: len(nodes) for name, nodes in graph.consumers().items()}
        self.outputs = set(graph.output_names)
        self.removed: list[Node] = []
        self.names = {n.name for n in graph.nodes}

    def single_use(self, name: str) -> bool:
        """The value is read exactly once and is not a graph output."""
        return self.uses.get(name, 0) == 1 and name not in self.outputs

    def merge(self, keep: Node, drop: Node) -> None:
        """``keep`` takes over the output of ``drop``, which leaves the graph."""
        self.g.value_types.pop(keep.outputs[0], None)
        self.producers.pop(keep.outputs[0], None)
        keep.outputs = [drop.outputs[0]]
        self.producers[keep.outputs[0]] = keep
        self.removed.append(drop)

    def add_initializer(self, base: str, array: np.ndarray) -> str:
        name = base
        while name in self.g.initializers or name in self.producers or name in self.g.input_names:
            name += "_"
        self.g.initializers[name] = array
        self.g.value_types[name] = TensorType(name_of(array.dtype), array.shape)
        return name

    def unique_name(self, node: Node) -> None:
        """Give a fused node a name no other node has (activations are keyed by it)."""
        if node.name and sum(n.name == node.name for n in self.g.nodes) == 1:
            return
        i = 0
        while f"{node.op}_{i}" in self.names:
            i += 1
        node.name = f"{node.op}_{i}"
        self.names.add(node.name)

    def run(self) -> None:
        for node in list(self.g.nodes):
            if node.op == "BatchNormalization":
                self.fold_batchnorm(node)
            elif node.op == "Mul":
                self.fold_channel_constant(node, scale=True)
            elif node.op == "Add" and not self.fold_channel_constant(node, scale=False):
                self.matmul_add_to_gemm(node)
        self.finish()

    def finish(self) -> None:
        dropped = {id(n) for n in self.removed}
        self.g.nodes = [n for n in self.g.nodes if id(n) not in dropped]
        self.removed = []
        read = {name for n in self.g.nodes for name in node_reads(n)} | self.outputs
        for name in [k for k in self.g.initializers if k not in read]:
            del self.g.initializers[name]
            self.g.value_types.pop(name, None)

    def fold_batchnorm(self, bn: Node) -> None:
        """Conv -> BatchNormalization with constant parameters becomes one Conv."""
        consts = self.g.initializers
        conv = self.producers.get(bn.inputs[0])
        if conv is None or conv.op != "Conv" or not _inference(bn) or not self.single_use(bn.inputs[0]):
            return
        w_name = conv.inputs[1]
        b_name = conv.inputs[2] if len(conv.inputs) > 2 else ""
        params = bn.inputs[1:5]
        if w_name not in consts or (b_name and b_name not in consts) or not all(p in consts for p in params):
            return
        w = consts[w_name]
        scale, shift, mean, var = (consts[p].astype(np.float64) for p in params)
        factor = scale / np.sqrt(var + float(np.float32(node_attrs(bn)["epsilon"])))
        if factor.shape != (w.shape[0],) or any(a.shape != factor.shape for a in (shift, mean)):
            return
        bias = consts[b_name].astype(np.float64) if b_name else np.zeros(w.shape[0])
        new_w = (w.astype(np.float64) * factor.reshape((-1,) + (1,) * (w.ndim - 1))).astype(w.dtype)
        new_b = ((bias - mean) * factor + shift).astype(w.dtype)
        base = conv.name or bn.outputs[0]
        conv.inputs = [conv.inputs[0], self.add_initializer(f"{base}_folded_W", new_w),
                       self.add_initializer(f"{base}_folded_B", new_b)]
        self.merge(conv, bn)

    def fold_channel_constant(self, node: Node, scale: bool) -> bool:
        """Conv or inference BatchNormalization -> Mul (``scale``) or Add of a constant per
        channel becomes the producer with that constant folded into its parameters."""
        consts = self.g.initializers
        for i, j in ((0, 1), (1, 0)):
            producer = self.producers.get(node.inputs[i])
            c = consts.get(node.inputs[j])
            if producer is None or c is None or not self.single_use(node.inputs[i]):
                continue
            if producer.op == "Conv":
                names = producer.inputs[1:3]
                if any(n and n not in consts for n in names):
                    continue
                w = consts[names[0]]
                channels, rank, dtype = w.shape[0], w.ndim, w.dtype
            elif producer.op == "BatchNormalization" and _inference(producer):
                names = producer.inputs[1:3]
                x_type = self.g.type_of(producer.inputs[0])
                if not all(n in consts for n in names) or x_type is None or x_type.rank is None:
                    continue
                channels, rank, dtype = consts[names[0]].shape[0], x_type.rank, np.dtype(x_type.dtype)
                if any(consts[n].dtype != dtype for n in names):
                    continue
            else:
                continue
            vector = _per_channel(c, channels, rank, dtype)
            if vector is None:
                continue
            self._fold_into(producer, names, vector, scale)
            self.merge(producer, node)
            return True
        return False

    def _fold_into(self, producer: Node, names: list[str], vector: np.ndarray, scale: bool) -> None:
        """Scale (or shift) the producer's output per channel through its parameters:
        input 1 (weight or scale) and input 2 (bias)."""
        consts = self.g.initializers
        first = consts[names[0]]
        bias = consts[names[1]] if len(names) > 1 and names[1] else np.zeros(first.shape[0], first.dtype)
        base = producer.name or producer.outputs[0]
        inputs = list(producer.inputs) + [""] * (3 - len(producer.inputs))
        if scale:
            factor = vector.reshape((-1,) + (1,) * (first.ndim - 1))
            inputs[1] = self.add_initializer(f"{base}_scaled", (first.astype(np.float64) * factor).astype(first.dtype))
            bias = bias.astype(np.float64) * vector
        else:
            bias = bias.astype(np.float64) + vector
        inputs[2] = self.add_initializer(f"{base}_shifted", bias.astype(first.dtype))
        producer.inputs = inputs

    def matmul_add_to_gemm(self, add: Node) -> None:
        """MatMul of two matrices -> Add of a constant bias becomes Gemm(A, B, bias)."""
        for i, j in ((0, 1), (1, 0)):
            matmul = self.producers.get(add.inputs[i])
            bias = self.g.initializers.get(add.inputs[j])
            if matmul is None or matmul.op != "MatMul" or bias is None or not self.single_use(add.inputs[i]):
                continue
            a_type, b_type = (self.g.type_of(name) for name in matmul.inputs)
            if not _gemm_compatible(a_type, b_type, bias):
                continue
            matmul.op = "Gemm"
            matmul.inputs = [*matmul.inputs, add.inputs[j]]
            self.merge(matmul, add)
            return


def _inference(bn: Node) -> bool:
    """A BatchNormalization in inference mode with only its Y output."""
    return not any(bn.outputs[1:]) and not node_attrs(bn)["training_mode"]


def _per_channel(c: np.ndarray, channels: int, rank: int, dtype: np.dtype) -> np.ndarray | None:
    """``c`` as a float64 vector over the channels when, broadcast against a tensor of
    ``rank`` whose axis 1 has ``channels``, it varies at most along that axis (None otherwise)."""
    if c.dtype != dtype or rank < 2 or c.ndim > rank:
        return None
    shape = (1,) * (rank - c.ndim) + c.shape
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(c.astype(np.float64).reshape(-1), (channels,)).copy()


def _gemm_compatible(a: TensorType | None, b: TensorType | None, bias: np.ndarray) -> bool:
    """Gemm computes the MatMul+Add: float matrices, bias broadcasting to (M, N) only."""
    if a is None or b is None or a.rank != 2 or b.rank != 2 or bias.ndim > 2:
        return False
    if a.dtype not in ("float16", "float32", "float64") or bias.dtype.name != a.dtype:
        return False
    m, n = a.shape[0], b.shape[1]
    want = (m, n)[2 - bias.ndim:]
    return all(d == 1 or d == w for d, w in zip(bias.shape, want))


def _fuse_activations(g: Graph) -> dict[str, Activation]:
    rw = _Rewriter(g)
    fused: dict[str, Activation] = {}
    for act in list(g.nodes):
        producer = rw.producers.get(act.inputs[0]) if act.inputs else None
        if producer is None or producer.op not in PRODUCERS or not rw.single_use(act.inputs[0]):
            continue
        fn = activation(act, g.initializers)
        if fn is None:
            continue
        rw.unique_name(producer)
        previous = fused.get(producer.name)
        fused[producer.name] = fn if previous is None else _chain(previous, fn)
        rw.merge(producer, act)
    rw.finish()
    return fused


def _chain(first: Activation, second: Activation) -> Activation:
    return lambda y: second(first(y))


def activation(node: Node, constants: dict[str, np.ndarray]) -> Activation | None:
    """The in-place form of an activation node, or None when it is not one (or Clip has
    bounds that are not constants)."""
    if node.op in _PLAIN:
        return _PLAIN[node.op]
    if node.op == "LeakyRelu":
        return _leaky_relu(float(node_attrs(node)["alpha"]))
    if node.op == "HardSigmoid":
        attrs = node_attrs(node)
        return _hard_sigmoid(float(attrs["alpha"]), float(attrs["beta"]))
    if node.op == "Clip":
        bounds = (list(node.inputs[1:3]) + ["", ""])[:2]
        if any(name and name not in constants for name in bounds):
            return None
        low, high = (constants[name] if name else None for name in bounds)
        return _clip(low, high)
    return None


def _relu(y: np.ndarray) -> np.ndarray:
    return np.maximum(y, 0, out=y)


def _tanh(y: np.ndarray) -> np.ndarray:
    return np.tanh(y, out=y)


def _sigmoid(y: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        np.negative(y, out=y)
        np.exp(y, out=y)
        y += 1
        return np.reciprocal(y, out=y)


_PLAIN: dict[str, Activation] = {"Relu": _relu, "Tanh": _tanh, "Sigmoid": _sigmoid}


def _leaky_relu(alpha: float) -> Activation:
    def apply(y: np.ndarray) -> np.ndarray:
        np.multiply(y, y.dtype.type(alpha), out=y, where=y < 0)
        return y

    return apply


def _hard_sigmoid(alpha: float, beta: float) -> Activation:
    def apply(y: np.ndarray) -> np.ndarray:
        y *= y.dtype.type(alpha)
        y += y.dtype.type(beta)
        return np.clip(y, 0, 1, out=y)

    return apply


def _clip(low: np.ndarray | None, high: np.ndarray | None) -> Activation:
    def apply(y: np.ndarray) -> np.ndarray:
        if low is not None:
            np.maximum(y, low.astype(y.dtype), out=y)
        if high is not None:
            np.minimum(y, high.astype(y.dtype), out=y)
        return y

    return apply
