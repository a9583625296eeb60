"""ai.onnx.preview FlexAttention: reference vs onnx.reference (the one-node model, its
modifier subgraphs included, exported by dh's exporter), inference, and agreement with
the default-domain Attention where both apply."""
from __future__ import annotations

import numpy as np
import pytest
from dh_core.conformance.samples import all_samples
from dh_core.conformance.samples.preview import modifier
from dh_core.onnx_io import export_model
from dh_core.ops import registry
from dh_core.ops.base import InferContext
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx.reference import ReferenceEvaluator

from dh_core.errors import ShapeError
from dh_core.ir import Graph, Node, TensorType, Value

from .oracle import assert_matches

SAMPLES = all_samples()["FlexAttention"]
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FLEX = registry.get("FlexAttention", "ai.onnx.preview")


def _node(attrs: dict) -> Node:
    return Node("FlexAttention", ["q", "k", "v"], ["y"], dict(attrs), name="flex", domain="ai.onnx.preview")


def ours(q, k, v, attrs: dict) -> np.ndarray:
    (y,) = FLEX.run_reference(_node(attrs), [q, k, v])
    return y


def onnx_reference(q, k, v, attrs: dict) -> np.ndarray:
    graph = Graph([_node(attrs)], [Value(n, TensorType(x.dtype.name, x.shape)) for n, x in zip("qkv", (q, k, v))],
                  [Value("y", TensorType(q.dtype.name))])
    (y,) = ReferenceEvaluator(export_model(graph)).run(None, {"q": q, "k": k, "v": v})
    return y


@pytest.mark.parametrize("dtype", SAMPLES.dtypes)
@SETTINGS
@given(data=st.data())
def test_reference_matches_onnx(dtype, data):
    s = data.draw(SAMPLES.strategy(dtype))
    with np.errstate(all="ignore"):
        got, want = ours(*s.inputs, s.attrs), onnx_reference(*s.inputs, s.attrs)
    assert_matches(got, want, SAMPLES.tolerance_for(dtype))
    inferred = FLEX.infer(_infer_context(s.inputs, s.attrs))
    assert inferred == [TensorType(got.dtype.name, got.shape)]


def _infer_context(inputs, attrs) -> InferContext:
    node = _node(attrs)
    return InferContext(node, [TensorType(x.dtype.name, x.shape) for x in inputs], FLEX.full_attrs(node), [None] * 3)


def test_equals_attention_with_a_causal_score_mod():
    """A causal score_mod gives Attention's is_causal result (same scale, grouped heads)."""
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    k, v = rng.standard_normal((2, 2, 3, 5)).astype(np.float32), rng.standard_normal((2, 2, 3, 6)).astype(np.float32)
    flex = ours(q, k, v, {"score_mod": modifier("causal", "float32", (2, 4, 3, 3)), "scale": 0.5})
    (attention,) = registry.get("Attention").run_reference(
        Node("Attention", ["q", "k", "v"], ["y"], {"is_causal": 1, "scale": 0.5}), [q, k, v])[:1]
    np.testing.assert_allclose(flex, attention, rtol=1e-5, atol=1e-6)


def test_rejects_bad_ranks_and_head_counts():
    x = np.zeros((1, 3, 2, 4), np.float32)
    with pytest.raises(ShapeError, match="rank 4"):
        ours(x[0], x[0], x[0], {})
    with pytest.raises(ShapeError, match="multiple"):
        ours(x, np.zeros((1, 2, 2, 4), np.float32), np.zeros((1, 2, 2, 4), np.float32), {})
