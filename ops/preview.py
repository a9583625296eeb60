"""Ops of the ``ai.onnx.preview`` domain: operators ONNX is still trying out."""
from __future__ import annotations

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import Graph, TensorType

from .base import Attr, InferContext, OpDef, Param
from .control import run_graph
from .registry import register


def _run_mod(graph: Graph, x: np.ndarray, outer: dict, which: str) -> np.ndarray:
    """Run a score_mod/prob_mod subgraph: one tensor in, one of the same shape out, in x's dtype."""
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise ShapeError(f"FlexAttention {which} must have one input and one output, it has "
                         f"{len(graph.inputs)} and {len(graph.outputs)}")
    (y,) = run_graph(graph, [x], outer)
    y = np.asarray(y)
    if y.shape != x.shape:
        raise ShapeError(f"FlexAttention {which} turned shape {list(x.shape)} into {list(y.shape)}")
    return y.astype(x.dtype)


@register
class FlexAttention(OpDef):
    """Scaled dot-product attention over (batch, heads, seq, head) tensors with optional
    subgraphs that modify the scores before the softmax (score_mod) and the probabilities
    after it (prob_mod). Q and K are each scaled by sqrt(scale) (default 1/sqrt(head)) in
    their dtype; the scores then go to softmax_precision (default float32, float64 for
    float64 inputs), where the softmax, the modifiers and the product with V run; Y is
    cast back. Query heads share K/V heads in contiguous groups (grouped-query attention)."""

    name = "FlexAttention"
    domain = "ai.onnx.preview"
    inputs = (Param("Q", "T1"), Param("K", "T1"), Param("V", "T1"))
    outputs = (Param("Y", "T1"),)
    attrs = {"prob_mod": Attr("graph", None), "scale": Attr("float", None), "score_mod": Attr("graph", None),
             "softmax_precision": Attr("int", None)}
    constraints = {"T1": dt.FLOATS}
    reads_outer = True

    @staticmethod
    def _check(q, k, v, node: str | None = None) -> None:
        ranks = [None if s is None else len(s) for s in (q, k, v)]
        if any(r is not None and r != 4 for r in ranks):
            raise ShapeError(f"FlexAttention Q, K and V must have rank 4, got ranks {ranks}", node)
        if q is None or k is None or v is None:
            return
        hq, hkv = q[1], k[1]
        if isinstance(hq, int) and isinstance(hkv, int) and (hkv == 0 or hq % hkv):
            raise ShapeError(f"FlexAttention: {hq} query heads are not a multiple of {hkv} key/value heads", node)

    def infer(self, ctx: InferContext):
        q, k, v = (ctx.shape(i) for i in range(3))
        self._check(q, k, v, ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        if dtype is None:
            return [None]
        if q is None or v is None:
            return [TensorType(dtype, None if q is None and v is None else (None,) * 4)]
        return [TensorType(dtype, (q[0], q[1], q[2], v[3]))]

    @staticmethod
    def _softmax_dtype(dtype: np.dtype, softmax_precision: int | None) -> np.dtype:
        if softmax_precision is not None:
            return np.dtype(dt.from_onnx(softmax_precision))
        return np.dtype(np.float64 if dtype == np.float64 else np.float32)

    def reference(self, q, k, v, *, prob_mod, scale, score_mod, softmax_precision, outer):
        self._check(q.shape, k.shape, v.shape)
        if k.shape[1] != v.shape[1] or k.shape[2] != v.shape[2] or q.shape[3] != k.shape[3]:
            raise ShapeError(f"FlexAttention shapes do not fit: Q {list(q.shape)}, K {list(k.shape)}, "
                             f"V {list(v.shape)}")
        group = q.shape[1] // k.shape[1]
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        factor = np.float32(1 / np.sqrt(q.shape[3])) if scale is None else np.float32(scale)
        root = np.sqrt(factor).astype(q.dtype)
        work = self._softmax_dtype(q.dtype, softmax_precision)
        scores = np.matmul(q * root, np.swapaxes(k * root, -1, -2)).astype(work)
        if score_mod is not None:
            scores = _run_mod(score_mod, scores, outer, "score_mod")
        top = np.max(scores, axis=-1, keepdims=True, initial=-np.inf)
        e = np.exp(scores - top)
        probs = e / np.sum(e, axis=-1, keepdims=True)
        if prob_mod is not None:
            probs = _run_mod(prob_mod, probs, outer, "prob_mod")
        return np.matmul(probs, v.astype(work)).astype(q.dtype)
