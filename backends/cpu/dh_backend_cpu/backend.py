"""The CPU backend: numpy/BLAS kernels, falling back to the op library's references."""
from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from dh_core.backend import Device, KernelBackend, Program, returns_tuple
from dh_core.ir import Graph, Node, TensorType, implicit_inputs, type_key
from dh_core.ops import registry
from dh_core.ops.base import as_value
from dh_core.passes import fold_constants

from .conv import conv_factory, conv_transpose_factory
from .fusion import fuse
from .normalization import batch_norm_factory, lrn_factory, sum_factory
from .pool import (
    average_pool_factory,
    global_average_pool_factory,
    global_max_pool_factory,
    max_pool_factory,
)


def reference_kernel(node: Node, types: Sequence[TensorType | None]):
    """A kernel that calls the op's numpy reference with the node's attributes bound."""
    opdef = registry.get(node.op, node.domain)
    attrs = opdef.full_attrs(node)
    ref = _unwrapped(opdef.reference)
    if opdef.reads_outer:
        return _control_kernel(node, ref, attrs)
    asarray = as_value if opdef.makes_values else np.asarray
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


def _control_kernel(node: Node, ref, attrs: dict):
    """The kernel of a node with subgraphs: its inputs, then the outer values its
    subgraphs read (as the Program passes them); the reference evaluates the bodies."""
    n_inputs = len(node.inputs)
    outer_names = implicit_inputs(node)

    def run(*xs):
        outer = dict(zip(outer_names, xs[n_inputs:]))
        result = ref(*xs[:n_inputs], outer=outer, **attrs)
        return tuple(as_value(r) for r in result) if isinstance(result, tuple) else (as_value(result),)

    if returns_tuple(node):
        return run
    return lambda *xs: run(*xs)[0]


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
    """Runs every op of the library on the host; buffers are numpy arrays (lists of
    them for sequences, None for an absent optional). Control flow (If, Loop, Scan,
    SequenceMap) and the sequence and optional ops run here only. Ops of other domains
    than ai.onnx (ai.onnx.preview) run through their references."""

    name = "cpu"
    host_memory = True

    def __init__(self):
        self.kernels = {op.name: reference_kernel for op in registry.all_ops() if not op.domain}
        self.kernels.update(fast_kernels())
        # library ops of domains other than ai.onnx run through their references
        self.domain_ops = {(op.domain, op.name) for op in registry.all_ops() if op.domain}

    def devices(self) -> list[Device]:
        return [Device("cpu")]

    def kernel_factory(self, node: Node):
        """The node's kernel factory, or None when this backend has none."""
        if node.domain:
            return reference_kernel if (node.domain, node.op) in self.domain_ops else None
        return self.kernels.get(node.op)

    def supports(self, node: Node, types: Sequence[TensorType | None]) -> bool:
        if self.kernel_factory(node) is None:
            return False
        opdef = registry.get(node.op, node.domain)
        for i, t in enumerate(types):
            if t is not None and "?" not in type_key(t) and type_key(t) not in opdef.dtypes(opdef.input_param(i).type):
                return False
        return True

    def compile(self, subgraph: Graph, device: Device) -> Program:
        """Fold every constant computation (of any size: the weights stay on the host
        anyway), fuse (Conv+BatchNorm folding, per-channel Mul/Add folding, MatMul+Add,
        producer+activation), then lower."""
        constant = fold_constants(subgraph.copy(), max_elements=sys.maxsize)
        graph, activations = fuse(constant)

        def make_kernel(node: Node, types):
            kernel = self.kernel_factory(node)(node, types)
            act = activations.get(node.name)
            if act is None:
                return kernel
            if returns_tuple(node):
                return lambda *xs: (act(kernel(*xs)[0]),)
            return lambda *xs: act(kernel(*xs))

        return QuietProgram.build(graph, make_kernel, np.asarray)

    def to_device(self, array: np.ndarray, device: Device) -> np.ndarray:
        return np.asarray(array)

    def to_host(self, buffer) -> np.ndarray:
        return np.asarray(buffer)


def fast_kernels() -> dict:
    """Kernels that beat the references: GEMM convolution, separable pooling, per-channel
    normalization."""
    return {
        "BatchNormalization": batch_norm_factory,
        "LRN": lrn_factory,
        "Sum": sum_factory,
        "Conv": conv_factory,
        "ConvTranspose": conv_transpose_factory,
        "MaxPool": max_pool_factory,
        "AveragePool": average_pool_factory,
        "GlobalAveragePool": global_average_pool_factory,
        "GlobalMaxPool": global_max_pool_factory,
    }
