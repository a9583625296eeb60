"""Samples for the ai.onnx.preview ops: FlexAttention with and without its modifier subgraphs."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt
from dh_core.ir import Graph, Node, TensorType, Value

from . import Sample, samples
from .linalg import values


def modifier(kind: str, dtype: str, shape: tuple[int, ...], bias: np.ndarray | None = None) -> Graph:
    """A one-input subgraph over a (batch, heads, q, kv) tensor of dtype: "soft_cap"
    (30 * tanh(x / 30)), "bias" (x + a broadcast bias), "causal" (x where kv <= q, else
    -inf) or "scale" (x * 0.5, for probabilities)."""
    t = TensorType(dtype, shape)
    if kind == "soft_cap":
        nodes = [Node("Div", ["x", "cap"], ["d"]), Node("Tanh", ["d"], ["t"]), Node("Mul", ["t", "cap"], ["y"])]
        consts = {"cap": np.array(30, dtype)}
    elif kind == "bias":
        nodes, consts = [Node("Add", ["x", "bias"], ["y"])], {"bias": bias.astype(dtype)}
    elif kind == "causal":
        q, kv = shape[2], shape[3]
        allowed = np.arange(kv)[np.newaxis, :] <= np.arange(q)[:, np.newaxis]
        nodes = [Node("Where", ["allowed", "x", "masked"], ["y"])]
        consts = {"allowed": allowed, "masked": np.array(-np.inf, dtype)}
    else:
        nodes, consts = [Node("Mul", ["x", "half"], ["y"])], {"half": np.array(0.5, dtype)}
    return Graph(nodes, [Value("x", t)], [Value("y", t)], consts, name=kind)


@samples("FlexAttention", dt.FLOATS, {"float16": (1e-2, 1e-2), "float32": (1e-5, 1e-5),
                                      "float64": (1e-10, 1e-10)})
def flex_attention(dtype):
    """Grouped-query heads, differing head sizes, scale and softmax_precision set or not,
    and score_mod/prob_mod subgraphs (soft cap, additive bias, causal mask, scaling)."""

    @st.composite
    def draw(draw_):
        batch, kv_heads = draw_(st.integers(1, 2)), draw_(st.integers(1, 2))
        q_heads = kv_heads * draw_(st.integers(1, 2))
        q_len, kv_len, head, v_head = (draw_(st.integers(1, 4)) for _ in range(4))
        q = draw_(values(dtype, (batch, q_heads, q_len, head), bound=2, special=False))
        k = draw_(values(dtype, (batch, kv_heads, kv_len, head), bound=2, special=False))
        v = draw_(values(dtype, (batch, kv_heads, kv_len, v_head), bound=2, special=False))
        attrs = {}
        if draw_(st.booleans()):
            attrs["scale"] = draw_(st.sampled_from([0.1, 0.5, 1.0]))
        work = "float64" if dtype == "float64" else "float32"
        if draw_(st.booleans()):
            work = draw_(st.sampled_from(["float32", "float64"]))
            attrs["softmax_precision"] = dt.onnx_code(work)
        scores = (batch, q_heads, q_len, kv_len)
        kind = draw_(st.sampled_from([None, "soft_cap", "bias", "causal"]))
        if kind is not None:
            bias = draw_(values(work, (1, 1, q_len, kv_len), bound=2, special=False)) if kind == "bias" else None
            attrs["score_mod"] = modifier(kind, work, scores, bias)
        if draw_(st.booleans()):
            attrs["prob_mod"] = modifier("scale", work, scores)
        return Sample([q, k, v], attrs)

    return draw()
