"""Loss functions: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Both are ONNX functions and composites here. A target equal to ``ignore_index`` adds
nothing to the loss (its entry is exactly 0, even where the input is nan) and nothing
to the weight total; "mean" divides the summed loss by that total (the count of
targets not ignored when there are no weights). float16 sums accumulate in float32,
as ReduceSum does.
"""
from __future__ import annotations

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .base import Attr, Decomposer, InferContext, OpDef, Param
from .normalization import LogSoftmax
from .reduce import sum_reduce
from .registry import register

REDUCTIONS = ("none", "sum", "mean")
_LOG_SOFTMAX = LogSoftmax()


def _check_reduction(reduction: str, op: str, node: str | None = None) -> None:
    if reduction not in REDUCTIONS:
        raise ShapeError(f"{op} reduction '{reduction}' is not one of {', '.join(REDUCTIONS)}", node)


def _loss_shape(ctx: InferContext) -> tuple | None:
    """The unreduced loss's shape: the target's, else (N, d1, ...) of the input."""
    target = ctx.shape(1)
    if target is not None:
        return tuple(target)
    x = ctx.shape(0)
    return None if x is None or len(x) < 2 else (x[0], *x[2:])


def nll_loss(x: np.ndarray, target: np.ndarray, weight: np.ndarray | None,
             ignore_index: int | None, reduction: str) -> np.ndarray:
    """Negative log likelihood of ``target`` classes under log-probabilities ``x`` (N, C, ...)."""
    _check_reduction(reduction, "NegativeLogLikelihoodLoss")
    if x.ndim < 2 or target.shape != (x.shape[0], *x.shape[2:]):
        raise ShapeError(f"NegativeLogLikelihoodLoss target {list(target.shape)} does not fit "
                         f"input {list(x.shape)} (N, C, d1, ...)")
    ignored = np.zeros(target.shape, bool) if ignore_index is None else target == ignore_index
    safe = np.where(ignored, 0, target).astype(np.int64)
    if ((safe < 0) | (safe >= x.shape[1])).any():
        raise ShapeError(f"NegativeLogLikelihoodLoss target holds a class outside [0, {x.shape[1]})")
    zero = np.zeros((), x.dtype)
    loss = -np.take_along_axis(x, np.expand_dims(safe, 1), axis=1).squeeze(1)
    if weight is not None:
        loss = loss * weight[safe]
    loss = np.where(ignored, zero, loss)
    if reduction == "none":
        return loss
    total = sum_reduce(loss, tuple(range(loss.ndim)), False)
    if reduction == "sum":
        return total
    if weight is None and ignore_index is None:
        count = np.asarray(loss.size, x.dtype)
    else:
        w = np.ones((), x.dtype) if weight is None else weight[safe]
        count = sum_reduce(np.where(ignored, zero, w), tuple(range(loss.ndim)), False)
    return np.asarray(total / count).astype(x.dtype)


def emit_nll_loss(d: Decomposer, x: str, target: str, weight: str | None,
                  outputs: list[str]) -> None:
    """Emit the core ops of NegativeLogLikelihoodLoss on ``x`` (log-probabilities)."""
    dtype, tdtype = d.dtype(0), d.dtype(1)
    ignore_index, reduction = d.attrs.get("ignore_index"), d.attrs["reduction"]
    _check_reduction(reduction, d.node.op, d.node.name)
    axis1 = d.const([1], "int64")
    zero = d.const(0, dtype)
    ignored = None
    if ignore_index is not None:
        ignored = d.op("Equal", target, d.const(ignore_index, tdtype))
        target = d.op("Where", ignored, d.const(0, tdtype), target)
    picked = d.op("Squeeze", d.op("GatherElements", x, d.op("Unsqueeze", target, axis1), axis=1), axis1)
    loss = d.op("Neg", picked)
    w = None
    if weight is not None:
        w = d.op("Gather", weight, target, axis=0)
        loss = d.op("Mul", loss, w)
    if ignored is not None:
        loss = d.op("Where", ignored, zero, loss)
    if reduction == "none":
        d.op("Identity", loss, outputs=outputs)
    elif reduction == "sum":
        d.op("ReduceSum", loss, outputs=outputs, keepdims=0)
    elif w is None and ignored is None:
        d.op("ReduceMean", loss, outputs=outputs, keepdims=0)
    else:
        if ignored is not None:
            w = d.op("Where", ignored, zero, w if w is not None else d.const(1, dtype))
        d.op("Div", d.op("ReduceSum", loss, keepdims=0), d.op("ReduceSum", w, keepdims=0), outputs=outputs)


class _Loss(OpDef):
    attrs = {"ignore_index": Attr("int", None), "reduction": Attr("string", "mean")}
    constraints = {"T": dt.FLOATS, "Tind": dt.INDEX}
    composite = True

    def _loss_type(self, ctx: InferContext) -> TensorType | None:
        _check_reduction(ctx.attrs["reduction"], self.name, ctx.node.name)
        dtype = ctx.dtype(0)
        if dtype is None:
            return None
        return TensorType(dtype, _loss_shape(ctx) if ctx.attrs["reduction"] == "none" else ())


@register
class NegativeLogLikelihoodLoss(_Loss):
    """loss[n, d...] = -input[n, target[n, d...], d...] * weight[target[n, d...]]."""

    name = "NegativeLogLikelihoodLoss"
    inputs = (Param("input", "T"), Param("target", "Tind"), Param("weight", "T", optional=True))
    outputs = (Param("loss", "T"),)

    def infer(self, ctx: InferContext):
        return [self._loss_type(ctx)]

    def reference(self, x, target, weight=None, *, ignore_index, reduction):
        with np.errstate(all="ignore"):
            return nll_loss(x, target, weight, ignore_index, reduction)

    def decompose(self, d: Decomposer):
        weight = d.inputs[2] if len(d.inputs) > 2 and d.inputs[2] else None
        emit_nll_loss(d, d.inputs[0], d.inputs[1], weight, d.outputs[:1])


@register
class SoftmaxCrossEntropyLoss(_Loss):
    """NegativeLogLikelihoodLoss of LogSoftmax(scores) along the class axis 1; the
    optional second output is that log-probability."""

    name = "SoftmaxCrossEntropyLoss"
    inputs = (Param("scores", "T"), Param("labels", "Tind"), Param("weights", "T", optional=True))
    outputs = (Param("output", "T"), Param("log_prob", "T", optional=True))

    def infer(self, ctx: InferContext):
        dtype = ctx.dtype(0)
        log_prob = None if dtype is None else TensorType(dtype, ctx.shape(0))
        return [self._loss_type(ctx), log_prob][:len(ctx.node.outputs)]

    def reference(self, scores, labels, weights=None, *, ignore_index, reduction):
        if scores.ndim < 2:
            raise ShapeError(f"SoftmaxCrossEntropyLoss scores need shape (N, C, ...), got {list(scores.shape)}")
        log_prob = _LOG_SOFTMAX.reference(scores, axis=1)
        with np.errstate(all="ignore"):
            return nll_loss(log_prob, labels, weights, ignore_index, reduction), log_prob

    def decompose(self, d: Decomposer):
        wanted = len(d.outputs) > 1 and d.outputs[1]
        log_prob = d.op("LogSoftmax", d.inputs[0], outputs=[d.outputs[1]] if wanted else 1, axis=1)
        weight = d.inputs[2] if len(d.inputs) > 2 and d.inputs[2] else None
        emit_nll_loss(d, log_prob, d.inputs[1], weight, d.outputs[:1])
