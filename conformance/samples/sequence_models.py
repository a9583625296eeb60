"""Samples for the stateful sequence-model ops: LinearAttention and CausalConvWithState.
Batch 1-2, up to 4 tokens (a decode step is one), heads 1-2 (grouped-query up to 2x)."""
from __future__ import annotations

from dh_core.ops.sequence_models import ACTIVATIONS, UPDATE_RULES
from hypothesis import strategies as st

from . import Sample, samples
from .linalg import values

SEQUENCE_TOLERANCE = {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5)}
"""The state sums every earlier token's outer product: float16 rounding grows with the sequence."""


@samples("LinearAttention", ("float16", "float32"), SEQUENCE_TOLERANCE)
def linear_attention(dtype):
    """Every update rule, per-head or per-feature decay (log-space, nonpositive), per-head
    or shared beta in [0, 1], an optional past state (possibly of the other float dtype),
    and the default or an explicit scale."""

    @st.composite
    def draw(draw_):
        batch, seq = draw_(st.integers(1, 2)), draw_(st.integers(1, 4))
        kv_heads = draw_(st.integers(1, 2))
        q_heads = kv_heads * draw_(st.integers(1, 2))
        d_k, d_v = draw_(st.integers(1, 3)), draw_(st.integers(1, 3))
        rule = draw_(st.sampled_from(UPDATE_RULES))
        attrs = {"q_num_heads": q_heads, "kv_num_heads": kv_heads, "update_rule": rule}
        if draw_(st.booleans()):
            attrs["scale"] = draw_(st.sampled_from([0.0, 0.5, 1.25]))
        q = draw_(values(dtype, (batch, seq, q_heads * d_k), bound=1, special=False))
        k = draw_(values(dtype, (batch, seq, kv_heads * d_k), bound=1, special=False))
        v = draw_(values(dtype, (batch, seq, kv_heads * d_v), bound=2, special=False))
        past = None
        if draw_(st.booleans()):
            state_dtype = draw_(st.sampled_from([dtype, "float16", "float32"]))
            past = draw_(values(state_dtype, (batch, kv_heads, d_k, d_v), bound=1, special=False))
        decay = beta = None
        if rule in ("gated", "gated_delta"):
            width = draw_(st.sampled_from([kv_heads, kv_heads * d_k]))
            decay = -draw_(values(dtype, (batch, seq, width), bound=2, special=False, nonnegative=True))
        if rule in ("delta", "gated_delta"):
            width = draw_(st.sampled_from([kv_heads, 1]))
            beta = draw_(values(dtype, (batch, seq, width), bound=1, special=False, nonnegative=True))
        return Sample([q, k, v, past, decay, beta], attrs)

    return draw()


@samples("CausalConvWithState", ("float16", "float32"), SEQUENCE_TOLERANCE)
def causal_conv_with_state(dtype):
    """Kernel sizes 1-4, inputs shorter and longer than the kernel, optional bias and
    past state, and every activation."""

    @st.composite
    def draw(draw_):
        batch, channels = draw_(st.integers(1, 2)), draw_(st.integers(1, 3))
        length, k = draw_(st.integers(1, 5)), draw_(st.integers(1, 4))
        x = draw_(values(dtype, (batch, channels, length), bound=3))
        w = draw_(values(dtype, (channels, 1, k), bound=2, special=False))
        bias = draw_(values(dtype, (channels,), bound=2, special=False)) if draw_(st.booleans()) else None
        past = draw_(values(dtype, (batch, channels, k - 1), bound=3, special=False)) if draw_(st.booleans()) else None
        attrs = {"activation": draw_(st.sampled_from(ACTIVATIONS))}
        return Sample([x, w, bias, past], attrs)

    return draw()
