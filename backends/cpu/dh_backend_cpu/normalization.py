"""Per-channel kernels of the CPU backend: inference BatchNormalization, LRN and Sum.

BatchNormalization with constant statistics is one multiply-add per element with the
per-channel factor and shift computed once in float64. LRN sums the squares of the
channel window with shifted in-place adds. Sum adds into its first fresh result.
float16 is computed in float32 and cast back.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from dh_core.ops.normalization import float_attr

from dh_core.backend import Kernel
from dh_core.ir import Node, TensorType

from .conv import compute_dtype, node_attrs


def batch_norm_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of BatchNormalization; in training mode (or with the running statistics as
    outputs) the op library's reference."""
    attrs = node_attrs(node)
    if attrs["training_mode"] or any(node.outputs[1:]):
        from .backend import reference_kernel

        return reference_kernel(node, types)
    epsilon = float(np.float32(attrs["epsilon"]))  # ONNX stores float attributes as float32
    cache: list = [(), None]

    def affine(x: np.ndarray, params: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(factor, shift) shaped to broadcast over x, recomputed when new parameters come in."""
        known, value = cache
        if len(known) == 4 and all(a is b for a, b in zip(known, params)):
            return value
        scale, b, mean, var = (p.astype(np.float64) for p in params)
        factor = scale / np.sqrt(var + epsilon)
        ct = compute_dtype(np.result_type(x, *params))
        shape = (-1,) + (1,) * (x.ndim - 2)
        value = ((factor.astype(ct).reshape(shape), (b - mean * factor).astype(ct).reshape(shape)))
        cache[:] = [params, value]
        return value

    def kernel(x: np.ndarray, scale, b, mean, var) -> tuple[np.ndarray]:
        factor, shift = affine(x, (scale, b, mean, var))
        y = np.multiply(x, factor, dtype=factor.dtype)
        y += shift
        return (y.astype(x.dtype, copy=False),)

    return kernel


def lrn_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of LRN: X / (bias + alpha / size * window sum of X**2) ** beta over channels."""
    attrs = node_attrs(node)
    size, beta = int(attrs["size"]), float(np.float32(attrs["beta"]))
    before, after = (size - 1) // 2, size // 2

    def kernel(x: np.ndarray) -> np.ndarray:
        ct = compute_dtype(x.dtype)
        xs = x.astype(ct, copy=False)
        squares = np.square(xs)
        total = squares.copy()
        for d in range(1, before + 1):
            total[:, d:] += squares[:, :-d]
        for d in range(1, after + 1):
            total[:, :-d] += squares[:, d:]
        total *= float_attr(attrs["alpha"], ct) / ct.type(size)
        total += float_attr(attrs["bias"], ct)
        if beta == 0.75:  # d ** -0.75 as (1 / sqrt(d)) * sqrt(1 / sqrt(d)): two square roots, no pow
            np.sqrt(total, out=total)
            np.reciprocal(total, out=total)
            np.multiply(total, np.sqrt(total), out=total)
        else:
            np.power(total, -float_attr(beta, ct), out=total)
        total *= xs
        return total.astype(x.dtype, copy=False)

    return kernel


def sum_factory(node: Node, types: Sequence[TensorType | None]) -> Kernel:
    """Kernel of Sum: the inputs added left to right into one fresh array."""

    def kernel(*xs: np.ndarray) -> np.ndarray:
        y = np.add(xs[0], xs[1]) if len(xs) > 1 else xs[0].copy()
        for x in xs[2:]:
            if np.broadcast_shapes(y.shape, x.shape) == y.shape:
                y += x
            else:
                y = y + x
        return y

    return kernel
