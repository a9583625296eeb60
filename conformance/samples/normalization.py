"""Samples for the normalization ops and Softmax/LogSoftmax."""
from __future__ import annotations

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .linalg import values
from .strategies import arrays, shapes

NORM_TOLERANCE = {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-3), "float64": (1e-9, 1e-9)}
"""Normalizing divides by the standard deviation, which is about sqrt(epsilon) for a constant
group: a one-ulp error in a float32 mean then reaches about 1e-4 in the output."""

STASH_TOLERANCE = {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-3), "float64": (1e-4, 1e-3)}
"""Layer/GroupNormalization compute their statistics in float32 (stash_type 1), float64 inputs too."""

EPSILONS = st.sampled_from([1e-5, 1e-3, 0.1])


def _nchw(draw, min_rank: int, max_rank: int, max_channels: int = 4) -> tuple[int, ...]:
    rank = draw(st.integers(min_rank, max_rank))
    dims = [draw(st.integers(1, 2)), draw(st.integers(1, max_channels))]
    return tuple(dims + [draw(st.integers(1, 4)) for _ in range(rank - 2)])


@samples("BatchNormalization", dt.FLOATS, NORM_TOLERANCE)
def batch_normalization(dtype):
    @st.composite
    def draw(draw_):
        shape = _nchw(draw_, 2, 5)
        channels = (shape[1],)
        t1 = draw_(st.sampled_from([dtype, dtype, *dt.FLOATS]))
        t2 = draw_(st.sampled_from([dtype, dtype, *dt.FLOATS]))
        x = draw_(values(dtype, shape))
        scale, b = (draw_(values(t1, channels, bound=2, special=False)) for _ in range(2))
        mean = draw_(values(t2, channels, special=False))
        var = draw_(values(t2, channels, bound=4, special=False, nonnegative=True))
        attrs = {"epsilon": draw_(EPSILONS)}
        if draw_(st.booleans()):
            attrs["momentum"] = 0.5
        if draw_(st.booleans()):  # training: batch statistics, running ones as outputs 2 and 3
            attrs["training_mode"] = 1
            return Sample([x, scale, b, mean, var], attrs, n_outputs=draw_(st.integers(1, 3)))
        return Sample([x, scale, b, mean, var], attrs)

    return draw()


@samples("InstanceNormalization", dt.FLOATS, NORM_TOLERANCE)
def instance_normalization(dtype):
    @st.composite
    def draw(draw_):
        shape = _nchw(draw_, 3, 5)
        x = draw_(values(dtype, shape))
        scale, b = (draw_(values(dtype, (shape[1],), bound=2, special=False)) for _ in range(2))
        return Sample([x, scale, b], {"epsilon": draw_(EPSILONS)})

    return draw()


@samples("LayerNormalization", dt.FLOATS, STASH_TOLERANCE)
def layer_normalization(dtype):
    @st.composite
    def draw(draw_):
        shape = draw_(shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
        axis = draw_(st.integers(-len(shape), len(shape) - 1))
        normalized = shape[axis:]
        param_shape = normalized[draw_(st.integers(0, len(normalized) - 1)):]
        x = draw_(values(dtype, shape))
        inputs = [x, draw_(values(dtype, param_shape, bound=2, special=False))]
        if draw_(st.booleans()):
            inputs.append(draw_(values(dtype, param_shape, bound=2, special=False)))
        attrs = {"axis": axis, "epsilon": draw_(EPSILONS)}
        return Sample(inputs, attrs, n_outputs=draw_(st.integers(1, 3)))

    return draw()


@samples("GroupNormalization", dt.FLOATS, STASH_TOLERANCE)
def group_normalization(dtype):
    @st.composite
    def draw(draw_):
        groups = draw_(st.integers(1, 3))
        shape = list(_nchw(draw_, 2, 4, max_channels=2))
        shape[1] *= groups
        x = draw_(values(dtype, tuple(shape)))
        scale, bias = (draw_(values(dtype, (shape[1],), bound=2, special=False)) for _ in range(2))
        return Sample([x, scale, bias], {"num_groups": groups, "epsilon": draw_(EPSILONS)})

    return draw()


def _softmax(dtype):
    @st.composite
    def draw(draw_):
        shape = draw_(shapes(min_dims=1))
        x = draw_(values(dtype, shape, bound=50))
        attrs = {"axis": draw_(st.integers(-len(shape), len(shape) - 1))} if draw_(st.booleans()) else {}
        return Sample([x], attrs)

    return draw()


SOFTMAX_TOLERANCE = {"float16": (1e-2, 1e-3), "float32": (1e-5, 1e-6)}
samples("Softmax", dt.FLOATS, SOFTMAX_TOLERANCE)(_softmax)
samples("LogSoftmax", dt.FLOATS, SOFTMAX_TOLERANCE)(_softmax)


@samples("RMSNormalization", dt.FLOATS, STASH_TOLERANCE)
def rms_normalization(dtype):
    """scale has X's dtype: ONNX's function body multiplies a T by a V, so T and V must agree."""

    @st.composite
    def draw(draw_):
        shape = draw_(shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
        axis = draw_(st.integers(-len(shape), len(shape) - 1))
        normalized = shape[axis:]
        scale_shape = normalized[draw_(st.integers(0, len(normalized))):]
        inputs = [draw_(values(dtype, shape)), draw_(values(dtype, scale_shape, bound=2, special=False))]
        return Sample(inputs, {"axis": axis, "epsilon": draw_(EPSILONS)})

    return draw()


@samples("MeanVarianceNormalization", dt.FLOATS, {"float16": (5e-2, 5e-2), "float32": (1e-3, 1e-3),
                                                  "float64": (1e-9, 1e-9)})
def mean_variance_normalization(dtype):
    """Groups whose values vary: ONNX's E[x^2] - E[x]^2 cancels for near-constant groups,
    where any two implementations may differ (even 0 against nan)."""

    @st.composite
    def draw(draw_):
        if draw_(st.booleans()):
            shape, axes, attrs = draw_(shapes(min_dims=4, max_dims=4, min_side=1, max_side=3)), [0, 2, 3], {}
        else:
            shape = draw_(shapes(min_dims=1, max_dims=4, min_side=1, max_side=4))
            axes = draw_(st.lists(st.integers(-len(shape), len(shape) - 1), min_size=1, max_size=len(shape),
                                  unique_by=lambda a: a % len(shape)))
            attrs = {"axes": axes}
        x = draw_(values(dtype, shape, bound=4))
        wide = x.astype(np.float64)
        axes = tuple(a % len(shape) for a in axes)
        mean = np.mean(wide, axis=axes)
        var = np.var(wide, axis=axes)
        assume(np.all(~np.isfinite(var) | (var > 1e-2 * (mean * mean + 1))))
        return Sample([x], attrs)

    return draw()


def _axis_sample(dtype, special: bool = True, **extra):
    @st.composite
    def draw(draw_):
        shape = draw_(shapes(min_dims=1))
        attrs = {"axis": draw_(st.integers(-len(shape), len(shape) - 1))} if draw_(st.booleans()) else {}
        for name, strategy in extra.items():
            if draw_(st.booleans()):
                attrs[name] = draw_(strategy)
        return Sample([draw_(values(dtype, shape, special=special))], attrs)

    return draw()


@samples("Hardmax", dt.FLOATS)
def hardmax(dtype):
    return _axis_sample(dtype)


@samples("LpNormalization", dt.FLOATS, {"float16": (1e-2, 1e-3), "float32": (1e-5, 1e-6)})
def lp_normalization(dtype):
    return _axis_sample(dtype, p=st.sampled_from([1, 2]))


@samples("LRN", dt.FLOATS, {"float16": (1e-2, 1e-3), "float32": (1e-5, 1e-6), "float64": (1e-7, 1e-9)})
def lrn(dtype):
    """float64 tolerance: alpha is a float32 attribute, which implementations round differently."""

    @st.composite
    def draw(draw_):
        shape = draw_(shapes(min_dims=2, max_dims=4, min_side=0, max_side=4))
        attrs = {"size": draw_(st.integers(1, 5))}
        if draw_(st.booleans()):
            attrs.update(alpha=draw_(st.sampled_from([1e-4, 0.1, 1.0])), beta=draw_(st.sampled_from([0.5, 0.75, 1.0])),
                         bias=draw_(st.sampled_from([1.0, 2.0])))
        return Sample([draw_(values(dtype, shape))], attrs)

    return draw()


@samples("RotaryEmbedding", ("float16", "float32"), {"float16": (1e-3, 1e-3), "float32": (1e-6, 1e-6)})
def rotary_embedding(dtype):
    """X as (batch, heads, seq, head) or (batch, seq, heads * head); caches indexed by
    position_ids (2-D) or given per (batch, seq) (3-D)."""

    @st.composite
    def draw(draw_):
        batch, heads, seq = draw_(st.integers(1, 2)), draw_(st.integers(1, 3)), draw_(st.integers(1, 4))
        head = 2 * draw_(st.integers(1, 3))
        rot = 2 * draw_(st.integers(1, head // 2)) if draw_(st.booleans()) else 0
        attrs = {"interleaved": draw_(st.sampled_from([0, 1]))}
        if rot:
            attrs["rotary_embedding_dim"] = rot
        if draw_(st.booleans()):
            x = draw_(values(dtype, (batch, heads, seq, head)))
        else:
            x = draw_(values(dtype, (batch, seq, heads * head)))
            attrs["num_heads"] = heads
        half = (rot or head) // 2
        if draw_(st.booleans()):
            positions = draw_(st.integers(1, 5))
            cache_shape = (positions, half)
            ids = draw_(arrays("int64", (batch, seq), min_value=0, max_value=positions - 1))
        else:
            cache_shape, ids = (batch, seq, half), None
        cos, sin = (draw_(values(dtype, cache_shape, bound=1, special=False)) for _ in range(2))
        return Sample([x, cos, sin, ids], attrs)

    return draw()


@samples("Attention", dt.FLOATS, {"float16": (1e-2, 1e-2), "float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10)})
def attention(dtype):
    """4-D or 3-D inputs, grouped-query heads, an optional bool or float mask (possibly
    shorter than the keys), a past cache or nonpad_kv_seqlen, causal/windowed masking,
    scale, softcap, every qk_matmul_output mode and 1 to 4 outputs."""

    @st.composite
    def draw(draw_):
        batch, kv_heads = draw_(st.integers(1, 2)), draw_(st.integers(1, 2))
        q_heads = kv_heads * draw_(st.integers(1, 2))
        q_len, kv_len, head, v_head = (draw_(st.integers(1, 3)) for _ in range(4))
        past = draw_(st.integers(0, 2))
        use_nonpad = not past and draw_(st.booleans())
        total = kv_len + past
        three_d = draw_(st.booleans())
        attrs = {}
        if three_d:
            attrs.update(q_num_heads=q_heads, kv_num_heads=kv_heads)
            shapes_ = [(batch, q_len, q_heads * head), (batch, kv_len, kv_heads * head),
                       (batch, kv_len, kv_heads * v_head)]
        else:
            shapes_ = [(batch, q_heads, q_len, head), (batch, kv_heads, kv_len, head),
                       (batch, kv_heads, kv_len, v_head)]
        q, k, v = (draw_(values(dtype, s, bound=3, special=False)) for s in shapes_)
        inputs = [q, k, v, None, None, None, None]
        if draw_(st.booleans()):
            mask_shape = draw_(st.sampled_from([(q_len, total), (batch, 1, q_len, total), (1, q_heads, q_len, total)]))
            mask_shape = mask_shape[:-1] + (draw_(st.integers(1, total)),)
            if draw_(st.booleans()):
                inputs[3] = draw_(arrays("bool", mask_shape))
            else:
                inputs[3] = draw_(values(dtype, mask_shape, bound=2, special=False))
        if past:
            inputs[4] = draw_(values(dtype, (batch, kv_heads, past, head), bound=3, special=False))
            inputs[5] = draw_(values(dtype, (batch, kv_heads, past, v_head), bound=3, special=False))
        if use_nonpad:
            inputs[6] = np.array(draw_(st.lists(st.integers(1, kv_len), min_size=batch, max_size=batch)), np.int64)
        for name, strategy in (("is_causal", st.sampled_from([0, 1])), ("scale", st.sampled_from([0.25, 1.0])),
                               ("softcap", st.sampled_from([0.0, 2.0])),
                               ("qk_matmul_output_mode", st.integers(0, 3)),
                               ("left_window_size", st.integers(-1, 2)), ("right_window_size", st.integers(-1, 2))):
            if draw_(st.booleans()):
                attrs[name] = draw_(strategy)
        while inputs and inputs[-1] is None:
            inputs.pop()
        return Sample(inputs, attrs, n_outputs=draw_(st.integers(1, 4)))

    return draw()
