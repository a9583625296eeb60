"""LinearAttention and CausalConvWithState: reference vs onnx.reference, inference, and
CausalConvWithState's decomposition (ONNX's function body) vs the reference."""
from __future__ import annotations

import numpy as np
import pytest
from dh_core.conformance.samples import all_samples
from dh_core.ops import registry
from dh_core.ops.base import InferContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType

from .oracle import assert_all_match, decomposed, infer, onnx_run, ours

SAMPLES = all_samples()
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPS = ("LinearAttention", "CausalConvWithState")
CASES = [(op, d) for op in OPS for d in SAMPLES[op].dtypes]


def _check(op: str, dtype: str, got, want) -> None:
    assert_all_match(got, want, SAMPLES[op].tolerance_for(dtype))


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    with np.errstate(all="ignore"):
        _check(op, dtype, ours(op, s.inputs, s.attrs, 2), onnx_run(op, s.inputs, s.attrs, 2))


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_infer_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    with np.errstate(all="ignore"):
        got = ours(op, s.inputs, s.attrs, 2)
    assert infer(op, s.inputs, s.attrs, 2) == [TensorType(y.dtype.name, y.shape) for y in got]


@pytest.mark.parametrize("dtype", SAMPLES["CausalConvWithState"].dtypes)
@SETTINGS
@given(data=st.data())
def test_causal_conv_decomposition_matches_reference(dtype, data):
    s = data.draw(SAMPLES["CausalConvWithState"].strategy(dtype))
    with np.errstate(all="ignore"):
        want = ours("CausalConvWithState", s.inputs, s.attrs, 2)
        got = decomposed("CausalConvWithState", s.inputs, s.attrs, 2)
    _check("CausalConvWithState", dtype, got, want)


def test_samples_cover_declared_dtypes():
    for op in OPS:
        opdef = registry.get(op)
        assert set(SAMPLES[op].dtypes) == set(opdef.dtypes(opdef.inputs[0].type)), op


def _infer(op, types, attrs):
    opdef = registry.get(op)
    node = Node(op, [f"x{i}" if t is not None else "" for i, t in enumerate(types)], ["y0", "y1"], attrs)
    return opdef.infer(InferContext(node, types, opdef.full_attrs(node), [None] * len(types)))


def test_linear_attention_infers_symbolic_shapes_and_state_dtype():
    f32, f16 = "float32", "float16"
    types = [TensorType(f32, ("B", "T", 8)), TensorType(f32, ("B", "T", 4)), TensorType(f32, ("B", "T", 6)),
             TensorType(f16, ("B", 2, 2, 3))]
    out, state = _infer("LinearAttention", types, {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "linear"})
    assert out == TensorType(f32, ("B", "T", 12))
    assert state == TensorType(f16, ("B", 2, 2, 3))
    with pytest.raises(ShapeError, match="needs input decay"):
        _infer("LinearAttention", types, {"q_num_heads": 4, "kv_num_heads": 2, "update_rule": "gated"})
    with pytest.raises(ShapeError, match="multiple"):
        _infer("LinearAttention", types, {"q_num_heads": 3, "kv_num_heads": 2, "update_rule": "linear"})


def test_linear_attention_decode_steps_chain_into_prefill():
    """Running tokens one at a time, passing present_state on, equals one prefill."""
    rng = np.random.default_rng(0)
    q, k = (rng.standard_normal((1, 3, 4)).astype(np.float32) for _ in range(2))
    v = rng.standard_normal((1, 3, 6)).astype(np.float32)
    decay = -rng.random((1, 3, 2)).astype(np.float32)
    beta = rng.random((1, 3, 2)).astype(np.float32)
    attrs = {"q_num_heads": 2, "kv_num_heads": 2}
    full, full_state = ours("LinearAttention", [q, k, v, None, decay, beta], attrs, 2)
    state, steps = None, []
    for t in range(3):
        one = [x[:, t:t + 1] for x in (q, k, v)]
        y, state = ours("LinearAttention", [*one, state, decay[:, t:t + 1], beta[:, t:t + 1]], attrs, 2)
        steps.append(y)
    np.testing.assert_allclose(np.concatenate(steps, axis=1), full, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(state, full_state, rtol=1e-5, atol=1e-6)


def test_causal_conv_decode_step_uses_the_carried_state():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)
    w = rng.standard_normal((3, 1, 3)).astype(np.float32)
    full, _ = ours("CausalConvWithState", [x, w], {}, 2)
    head, state = ours("CausalConvWithState", [x[:, :, :4], w], {}, 2)
    last, _ = ours("CausalConvWithState", [x[:, :, 4:], w, None, state], {}, 2)
    np.testing.assert_allclose(np.concatenate([head, last], axis=2), full, rtol=1e-6)
    with pytest.raises(ShapeError, match="activation"):
        ours("CausalConvWithState", [x, w], {"activation": "relu"}, 2)
