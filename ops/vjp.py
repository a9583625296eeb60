"""Vector-Jacobian products of single-output ops, for reverse-mode differentiation.

A rule maps the gradient ``g`` of an op's output (the output's shape), the op's input
values, its output value and its attributes (defaults filled in) to one gradient per
input: None where an input is not differentiable (an integer shape or axes input). A
gradient may keep the broadcast shape of the output; :func:`unbroadcast` sums it back
to the input's shape.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Grads = list  # one np.ndarray | None per input
Rule = Callable[[np.ndarray, Sequence[np.ndarray | None], np.ndarray, dict], Grads]

RULES: dict[str, Rule] = {}


def rule(*ops: str):
    """Decorator registering a rule for ops of the default domain."""
    def add(fn: Rule) -> Rule:
        for op in ops:
            RULES[op] = fn
        return fn
    return add


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``grad`` summed over the axes that broadcasting added or stretched to reach its
    shape from ``shape``."""
    grad = np.asarray(grad)
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return np.broadcast_to(grad, shape)


# -- elementwise ------------------------------------------------------------------------
@rule("Add")
def _add(g, inputs, y, attrs):
    return [g, g]


@rule("Sub")
def _sub(g, inputs, y, attrs):
    return [g, -g]


@rule("Mul")
def _mul(g, inputs, y, attrs):
    a, b = inputs
    return [g * b, g * a]


@rule("Div")
def _div(g, inputs, y, attrs):
    a, b = inputs
    return [g / b, -g * a / (b * b)]


@rule("Neg")
def _neg(g, inputs, y, attrs):
    return [-g]


@rule("Abs")
def _abs(g, inputs, y, attrs):
    return [g * np.sign(inputs[0])]


@rule("Exp")
def _exp(g, inputs, y, attrs):
    return [g * y]


@rule("Log")
def _log(g, inputs, y, attrs):
    return [g / inputs[0]]


@rule("Sqrt")
def _sqrt(g, inputs, y, attrs):
    return [g / (2 * y)]


@rule("Reciprocal")
def _reciprocal(g, inputs, y, attrs):
    return [-g * y * y]


@rule("Pow")
def _pow(g, inputs, y, attrs):
    """d/da = b a^(b-1); d/db = a^b log a, taken as 0 where a <= 0 (no real logarithm)."""
    a, b = inputs
    da = g * b * np.power(a, b - 1)
    positive = a > 0
    db = np.where(positive, g * y * np.log(np.where(positive, a, 1)), 0)
    return [da, db]


@rule("Relu")
def _relu(g, inputs, y, attrs):
    return [g * (inputs[0] > 0)]


@rule("Sigmoid")
def _sigmoid(g, inputs, y, attrs):
    return [g * y * (1 - y)]


@rule("Tanh")
def _tanh(g, inputs, y, attrs):
    return [g * (1 - y * y)]


@rule("Identity")
def _identity(g, inputs, y, attrs):
    return [g]


@rule("Cast")
def _cast(g, inputs, y, attrs):
    """Between floating dtypes the gradient passes through, cast back."""
    x = inputs[0]
    return [g.astype(x.dtype) if np.issubdtype(y.dtype, np.floating) else None]


@rule("Softmax")
def _softmax(g, inputs, y, attrs):
    axis = attrs["axis"]
    return [y * (g - np.sum(g * y, axis=axis, keepdims=True))]


# -- linear algebra ---------------------------------------------------------------------
@rule("MatMul")
def _matmul(g, inputs, y, attrs):
    """numpy.matmul semantics: a 1-D operand is a row (A) or column (B) vector whose
    added axis the output drops; batch axes broadcast."""
    a, b = inputs
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g[..., None] if b.ndim == 1 else g
    g2 = g2[..., None, :] if a.ndim == 1 else g2
    da = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
    db = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
    return [da, db]


@rule("Gemm")
def _gemm(g, inputs, y, attrs):
    """Y = alpha op(A) op(B) + beta C, op transposing when transA / transB is set."""
    a, b = inputs[0], inputs[1]
    alpha, beta = attrs["alpha"], attrs["beta"]
    op_a = a.T if attrs["transA"] else a
    op_b = b.T if attrs["transB"] else b
    da = alpha * (g @ op_b.T)
    db = alpha * (op_a.T @ g)
    grads = [da.T if attrs["transA"] else da, db.T if attrs["transB"] else db]
    if len(inputs) > 2 and inputs[2] is not None:
        grads.append(beta * g)
    return grads


# -- reductions -------------------------------------------------------------------------
def _reduced_axes(x: np.ndarray, axes: np.ndarray | None, attrs: dict) -> tuple[int, ...] | None:
    """The axes a Reduce* op reduced (None: none, the noop case)."""
    listed = [] if axes is None else [int(a) % max(x.ndim, 1) for a in np.asarray(axes).reshape(-1)]
    if not listed:
        return None if attrs["noop_with_empty_axes"] else tuple(range(x.ndim))
    return tuple(sorted(set(listed)))


def _spread(g: np.ndarray, x: np.ndarray, axes: tuple[int, ...], keepdims: int) -> np.ndarray:
    """The gradient of a reduction's output spread back over the reduced axes."""
    if not keepdims:
        g = np.expand_dims(g, axes)
    return np.broadcast_to(g, x.shape)


@rule("ReduceSum")
def _reduce_sum(g, inputs, y, attrs):
    return _reduction(g, inputs, attrs, mean=False)


@rule("ReduceMean")
def _reduce_mean(g, inputs, y, attrs):
    return _reduction(g, inputs, attrs, mean=True)


def _reduction(g: np.ndarray, inputs, attrs: dict, mean: bool) -> Grads:
    """Each input element gets its output's gradient (divided by the count for a mean)."""
    x, axes = inputs[0], inputs[1] if len(inputs) > 1 else None
    reduced = _reduced_axes(x, axes, attrs)
    if reduced is None:
        return [g, None]
    spread = _spread(g, x, reduced, attrs["keepdims"])
    if mean:
        spread = spread / max(int(np.prod([x.shape[a] for a in reduced])), 1)
    return [spread, None]


# -- movement ---------------------------------------------------------------------------
@rule("Reshape", "Flatten", "Squeeze", "Unsqueeze")
def _reshape(g, inputs, y, attrs):
    return [g.reshape(inputs[0].shape)] + [None] * (len(inputs) - 1)


@rule("Expand")
def _expand(g, inputs, y, attrs):
    return [g, None]


@rule("Transpose")
def _transpose(g, inputs, y, attrs):
    x = inputs[0]
    perm = attrs["perm"] if attrs["perm"] is not None else list(range(x.ndim))[::-1]
    return [np.transpose(g, np.argsort(perm))]
