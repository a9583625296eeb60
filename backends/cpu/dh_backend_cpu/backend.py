"""The CPU backend: numpy/BLAS kernels, falling back to the op library's references."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dh_core.backend import Device, KernelBackend, Program, returns_tuple
from dh_core.ir import Graph, Node, TensorType
from dh_core.ops import registry

from .conv import conv_factory, conv_transpose_factory
from .fusion import fuse
from .pool import (average_pool_factory, global_average_pool_factory, global_max_pool_factory,
                   max_pool_factory)


def reference_kernel(node: Node, types: Sequence[TensorType | None]):
    """A kernel that calls the op's numpy reference with the node's attributes bound."""
    opdef = registry.get(node.op, node.domain)
    attrs = opdef.full_attrs(node)
    ref = _unwrapped(opdef.reference)
    asarray = np.asarray
    if returns_tuple(node):
        def multi(*xs):
            result = ref(*xs, **attrs)
            if not isinstance(result, tuple):  # only the first output was computed
                return (asarray(result),)
            return tuple(asarray(r) for r in result)

        return multi
    if attrs:
        return lambda *xs: asarray(ref(*xs, **attrs))
    return lambda *xs: asarray(ref(*xs))


def _unwrapped(method):
    """The reference without a per-call ``np.errstate`` wrapper: the CPU program sets
    the error state once per run instead (it costs microseconds per call)."""
    raw = getattr(method, "__wrapped__", None)
    return method if raw is None else raw.__get__(method.__self__)


class QuietProgram(Program):
    """A program that runs with numpy's floating-point warnings off: nan, inf and
    integer wrap-around are op semantics here, not errors."""

    __slots__ = ()

    def run(self, inputs):
        with np.errstate(all="ignore"):
            return Program.run(self, inputs)


class CPUBackend(KernelBackend):
    """Runs every op of the library on the host; buffers are numpy arrays. Kernels are
    keyed by :func:`registry.qualified` op names (``ai.onnx.ml.LabelEncoder``)."""

    name = "cpu"
    host_memory = True

    def __init__(self):
        self.kernels = {registry.qualified(op.name, op.domain): reference_kernel for op in registry.all_ops()}
        self.kernels.update(fast_kernels())

    def devices(self) -> list[Device]:
        return [Device("cpu")]

    def supports(self, node: Node, types: Sequence[TensorType | None]) -> bool:
        if registry.qualified(node.op, node.domain) not in self.kernels:
            return False
        opdef = registry.get(node.op, node.domain)
        for i, t in enumerate(types):
            if t is not None and t.dtype not in opdef.dtypes(opdef.input_param(i).type):
                return False
        return True

    def compile(self, subgraph: Graph, device: Device) -> Program:
        """Fuse (Conv+BatchNorm folding, MatMul+Add, producer+activation), then lower."""
        graph, activations = fuse(subgraph)

        def make_kernel(node: Node, types):
            kernel = self.kernels[registry.qualified(node.op, node.domain)](node, types)
            act = activations.get(node.name)
            if act is None:
                return kernel
            return lambda *xs: act(kernel(*xs))

        return QuietProgram.build(graph, make_kernel, np.asarray)

    def to_device(self, array: np.ndarray, device: Device) -> np.ndarray:
        return np.asarray(array)

    def to_host(self, buffer) -> np.ndarray:
        return np.asarray(buffer)


def fast_kernels() -> dict:
    """Kernels that beat the references: im2col/GEMM convolution, separable pooling."""
    return {
        "Conv": conv_factory,
        "ConvTranspose": conv_transpose_factory,
        "MaxPool": max_pool_factory,
        "AveragePool": average_pool_factory,
        "GlobalAveragePool": global_average_pool_factory,
        "GlobalMaxPool": global_max_pool_factory,
    }
