"""Stateful ops of recurrent sequence models (opset 27): linear attention with its
recurrent state, and the causal depthwise convolution of state-space models, each
taking the state carried over from earlier tokens and returning the updated one.

Both run a whole prefill (many tokens) or one decode step (a single token) alike.
References accumulate in float64 and round once to the output dtype.
"""
from __future__ import annotations

import numpy as np

from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .base import Attr, Decomposer, InferContext, OpDef, Param
from .registry import register

UPDATE_RULES = ("linear", "gated", "delta", "gated_delta")
ACTIVATIONS = ("none", "silu", "swish")


def _per_head(x: int | str | None, heads: int) -> int | None:
    """The per-head size of a packed (heads * size) dim, when known."""
    return x // heads if isinstance(x, int) else None


@register
class LinearAttention(OpDef):
    """Linear attention over packed (batch, seq, heads * head) inputs with a recurrent
    state (batch, kv_heads, d_k, d_v) per key/value head. For each token t:
    the state decays by exp(decay_t) ("gated", "gated_delta"), the value becomes
    beta_t * (v_t - S^T k_t) with S the decayed state ("delta", "gated_delta"),
    S += k_t v_t^T, and o_t = scale * S^T q_t (scale 0 means 1/sqrt(d_k)). Query heads
    share key/value heads in groups of q_num_heads / kv_num_heads. decay is per head
    (last dim kv_heads) or per key feature (kv_heads * d_k); beta per head or shared
    (last dim 1). chunk_size is a tuning hint without effect on the result."""

    name = "LinearAttention"
    inputs = (Param("query", "T"), Param("key", "T"), Param("value", "T"), Param("past_state", "S", optional=True),
              Param("decay", "T", optional=True), Param("beta", "T", optional=True))
    outputs = (Param("output", "T"), Param("present_state", "S"))
    attrs = {"chunk_size": Attr("int", 64), "kv_num_heads": Attr("int"), "q_num_heads": Attr("int"),
             "scale": Attr("float", 0.0), "update_rule": Attr("string", "gated_delta")}
    constraints = {"T": ("float16", "float32"), "S": ("float16", "float32")}

    @staticmethod
    def _check(attrs: dict, ranks, has_decay: bool, has_beta: bool, node: str | None = None) -> None:
        rule, hq, hkv = attrs["update_rule"], attrs["q_num_heads"], attrs["kv_num_heads"]
        if rule not in UPDATE_RULES:
            raise ShapeError(f"LinearAttention update_rule must be one of {', '.join(UPDATE_RULES)}, got '{rule}'",
                             node)
        if hq <= 0 or hkv <= 0 or hq % hkv:
            raise ShapeError(f"LinearAttention q_num_heads ({hq}) must be a positive multiple of kv_num_heads "
                             f"({hkv})", node)
        if has_decay != (rule in ("gated", "gated_delta")):
            raise ShapeError(f"LinearAttention update_rule '{rule}' {'forbids' if has_decay else 'needs'} "
                             f"input decay", node)
        if has_beta != (rule in ("delta", "gated_delta")):
            raise ShapeError(f"LinearAttention update_rule '{rule}' {'forbids' if has_beta else 'needs'} input beta",
                             node)
        for name, rank in zip(("query", "key", "value", "decay", "beta"), ranks):
            if rank is not None and rank != 3:
                raise ShapeError(f"LinearAttention {name} must have rank 3 (batch, seq, packed heads), got {rank}",
                                 node)

    def infer(self, ctx: InferContext):
        a = ctx.attrs
        ranks = [None if ctx.shape(i) is None else len(ctx.shape(i)) for i in (0, 1, 2, 4, 5)]
        self._check(a, ranks, ctx.has(4), ctx.has(5), ctx.node.name)
        q, v = ctx.shape(0), ctx.shape(2)
        hq, hkv = a["q_num_heads"], a["kv_num_heads"]
        batch = q[0] if q is not None else v[0] if v is not None else None
        seq = q[1] if q is not None else None
        d_k = _per_head(q[2], hq) if q is not None else None
        d_v = _per_head(v[2], hkv) if v is not None else None
        t = ctx.dtype(0) or ctx.dtype(1) or ctx.dtype(2)
        s = ctx.dtype(3) if ctx.has(3) else t
        output = None if t is None else TensorType(t, (batch, seq, None if d_v is None else hq * d_v))
        state = None if s is None else TensorType(s, (batch, hkv, d_k, d_v))
        return [output, state]

    @staticmethod
    def _heads(x: np.ndarray, heads: int, what: str) -> np.ndarray:
        """(batch, seq, heads * size) -> (batch, heads, seq, size) in float64."""
        if x.shape[2] % heads:
            raise ShapeError(f"LinearAttention {what} last dim {x.shape[2]} is not a multiple of {heads} heads")
        return x.astype(np.float64).reshape(x.shape[0], x.shape[1], heads, -1).transpose(0, 2, 1, 3)

    def reference(self, query, key, value, past_state=None, decay=None, beta=None, *, chunk_size, kv_num_heads,
                  q_num_heads, scale, update_rule):
        attrs = {"update_rule": update_rule, "q_num_heads": q_num_heads, "kv_num_heads": kv_num_heads}
        ranks = [query.ndim, key.ndim, value.ndim, None if decay is None else decay.ndim,
                 None if beta is None else beta.ndim]
        self._check(attrs, ranks, decay is not None, beta is not None)
        q = self._heads(query, q_num_heads, "query")
        k = self._heads(key, kv_num_heads, "key")
        v = self._heads(value, kv_num_heads, "value")
        batch, _, seq, d_k = q.shape
        d_v = v.shape[3]
        if k.shape != (batch, kv_num_heads, seq, d_k) or v.shape[:3] != (batch, kv_num_heads, seq):
            raise ShapeError(f"LinearAttention key {list(key.shape)} and value {list(value.shape)} do not fit query "
                             f"{list(query.shape)} with {q_num_heads} query and {kv_num_heads} key/value heads")
        gate = None if decay is None else self._per_token(decay, (kv_num_heads, kv_num_heads * d_k), "decay")
        rate = None if beta is None else self._per_token(beta, (kv_num_heads, 1), "beta")
        shape = (batch, kv_num_heads, d_k, d_v)
        if past_state is not None and past_state.shape != shape:
            raise ShapeError(f"LinearAttention past_state has shape {list(past_state.shape)}, expected {list(shape)}")
        state = np.zeros(shape) if past_state is None else past_state.astype(np.float64)
        factor = float(np.float32(scale)) if scale else 1 / np.sqrt(d_k)
        group = q_num_heads // kv_num_heads
        out = np.zeros((batch, q_num_heads, seq, d_v))
        for t in range(seq):
            if gate is not None:
                state = state * np.exp(gate[:, :, t])[..., np.newaxis]
            v_t = v[:, :, t]
            if rate is not None:
                v_t = rate[:, :, t] * (v_t - np.einsum("bhkv,bhk->bhv", state, k[:, :, t]))
            state = state + k[:, :, t, :, np.newaxis] * v_t[:, :, np.newaxis, :]
            out[:, :, t] = factor * np.einsum("bhk,bhkv->bhv", q[:, :, t], np.repeat(state, group, axis=1))
        output = out.transpose(0, 2, 1, 3).reshape(batch, seq, q_num_heads * d_v).astype(query.dtype)
        return output, state.astype(query.dtype if past_state is None else past_state.dtype)

    @staticmethod
    def _per_token(x: np.ndarray, lasts: tuple[int, int], what: str) -> np.ndarray:
        """decay or beta (batch, seq, n) as (batch, heads, seq, n / heads) in float64,
        where n is one of ``lasts`` (per head, or per head feature / shared)."""
        if x.shape[2] not in lasts:
            raise ShapeError(f"LinearAttention {what} last dim must be {' or '.join(map(str, lasts))}, "
                             f"got {x.shape[2]}")
        heads = min(lasts[0], x.shape[2])
        return x.astype(np.float64).reshape(x.shape[0], x.shape[1], heads, -1).transpose(0, 2, 1, 3)


@register
class CausalConvWithState(OpDef):
    """Causal depthwise 1-D convolution: input (batch, channels, length) is prefixed with
    past_state (batch, channels, k - 1) (zeros when omitted) and convolved, channel by
    channel, with weight (channels, 1, k) and optional bias, then optionally passed
    through SiLU ("silu" and "swish" are the same). present_state is the last k - 1
    positions of the prefixed input."""

    name = "CausalConvWithState"
    inputs = (Param("input", "T"), Param("weight", "T"), Param("bias", "T", optional=True),
              Param("past_state", "T", optional=True))
    outputs = (Param("output", "T"), Param("present_state", "T"))
    attrs = {"activation": Attr("string", "none")}
    constraints = {"T": ("float16", "float32")}
    composite = True

    @staticmethod
    def _check(activation: str, ranks, node: str | None = None) -> None:
        if activation not in ACTIVATIONS:
            raise ShapeError(f"CausalConvWithState activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got '{activation}'", node)
        for name, rank in zip(("input", "weight"), ranks):
            if rank is not None and rank != 3:
                raise ShapeError(f"CausalConvWithState {name} must have rank 3, got {rank}", node)

    def infer(self, ctx: InferContext):
        x, w = ctx.shape(0), ctx.shape(1)
        self._check(ctx.attrs["activation"], [None if s is None else len(s) for s in (x, w)], ctx.node.name)
        (dtype, _) = self.output_dtypes(ctx)
        if dtype is None:
            return [None, None]
        k = w[2] if w is not None else None
        batch, channels = (x[0], x[1]) if x is not None else (None, None)
        return [TensorType(dtype, x), TensorType(dtype, (batch, channels, k - 1 if isinstance(k, int) else None))]

    def reference(self, x, weight, bias=None, past_state=None, *, activation):
        self._check(activation, [x.ndim, weight.ndim])
        batch, channels, length = x.shape
        k = weight.shape[2]
        if weight.shape[:2] != (channels, 1) or (bias is not None and bias.shape != (channels,)):
            raise ShapeError(f"CausalConvWithState weight {list(weight.shape)} and bias do not fit {channels} channels")
        if past_state is None:
            past_state = np.zeros((batch, channels, k - 1), x.dtype)
        elif past_state.shape != (batch, channels, k - 1):
            raise ShapeError(f"CausalConvWithState past_state has shape {list(past_state.shape)}, expected "
                             f"{[batch, channels, k - 1]}")
        padded = np.concatenate([past_state, x], axis=2)
        wide = padded.astype(np.float64)
        y = sum(wide[:, :, i:i + length] * weight[:, 0, i].astype(np.float64)[:, np.newaxis] for i in range(k))
        if bias is not None:
            y = y + bias.astype(np.float64)[:, np.newaxis]
        y = np.asarray(y, np.float64).astype(x.dtype)
        if activation != "none":
            wide_y = y.astype(np.float64)
            y = (wide_y / (1 + np.exp(-wide_y))).astype(x.dtype)
        return y, padded[:, :, padded.shape[2] - (k - 1):]

    def decompose(self, d: Decomposer):
        """ONNX's function body: Concat the state (or zeros) before the input, a grouped
        Conv, optional x * Sigmoid(x), and a Slice of the last k - 1 positions."""
        w = d.types[1].shape if d.types[1] is not None else None
        if w is None or not isinstance(w[0], int):
            raise ShapeError("CausalConvWithState needs the channel count of weight to decompose", d.node.name)
        x, weight = d.inputs[0], d.inputs[1]
        one = d.const(np.array([1], np.int64))
        km1 = d.op("Sub", d.op("Shape", weight, start=2, end=3), one)
        past = d.inputs[3] if len(d.inputs) > 3 and d.inputs[3] else None
        if past is None:
            shape = d.op("Concat", d.op("Shape", x, start=0, end=1), d.op("Shape", x, start=1, end=2), km1, axis=0)
            past = d.op("CastLike", d.op("ConstantOfShape", shape), x)
        padded = d.op("Concat", past, x, axis=2)
        conv_inputs = [padded, weight] + ([d.inputs[2]] if len(d.inputs) > 2 and d.inputs[2] else [])
        if d.attrs["activation"] == "none":
            d.op("Conv", *conv_inputs, outputs=[d.outputs[0]], group=int(w[0]))
        else:
            y = d.op("Conv", *conv_inputs, group=int(w[0]))
            d.op("Mul", y, d.op("Sigmoid", y), outputs=[d.outputs[0]])
        end = d.op("Shape", padded, start=2, end=3)
        d.op("Slice", padded, d.op("Sub", end, km1), end, d.const(np.array([2], np.int64)),
             outputs=[d.outputs[1]])
