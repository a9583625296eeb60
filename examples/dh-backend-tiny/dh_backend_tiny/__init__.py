"""A minimal dh backend plugin: five ops as numpy kernels.

Everything else in a model falls back to the CPU backend (or, with
``fallback="error"``, is reported). Install with ``pip install -e examples/dh-backend-tiny``,
then ``dh backends`` lists it and ``dh conformance --backend tiny`` checks it.
"""
from __future__ import annotations

import numpy as np

from dh_core.backend import Device, KernelBackend
from dh_core.plugins import BackendSpec, hookimpl


def binary(fn):
    """A kernel factory for a two-input op with no attributes."""
    return lambda node, types: fn


def relu(node, types):
    return lambda x: np.maximum(x, np.zeros((), x.dtype))


def gemm(node, types):
    alpha = node.attrs.get("alpha", 1.0)
    beta = node.attrs.get("beta", 1.0)
    trans_a, trans_b = node.attrs.get("transA", 0), node.attrs.get("transB", 0)

    def kernel(a, b, c=None):
        y = (a.T if trans_a else a) @ (b.T if trans_b else b)
        if alpha != 1.0:
            y = y * y.dtype.type(alpha)
        if c is not None:
            y = y + (c * c.dtype.type(beta) if beta != 1.0 else c)
        return y

    return kernel


class TinyBackend(KernelBackend):
    """Host-memory backend with kernels for Add, Mul, MatMul, Relu and Gemm in float32."""

    name = "tiny"
    host_memory = True
    kernels = {"Add": binary(np.add), "Mul": binary(np.multiply), "MatMul": binary(np.matmul),
               "Relu": relu, "Gemm": gemm}
    dtypes = {op: ("float32",) for op in kernels}

    def devices(self) -> list[Device]:
        return [Device("tiny")]


@hookimpl
def dh_backends():
    return [BackendSpec("tiny", TinyBackend, description="five numpy kernels, an example plugin")]
