"""Normalization ops and Softmax/LogSoftmax: reference vs onnx.reference, inference,
and every decomposition vs the reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from dh_core import dtypes as dt
from dh_core.conformance.samples import all_samples
from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType
from dh_core.ops import registry
from dh_core.ops.base import Decomposer, InferContext

from .oracle import assert_all_match, decomposed, infer, onnx_run, ours

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SAMPLES = all_samples()
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPS = ("BatchNormalization", "InstanceNormalization", "LayerNormalization", "GroupNormalization",
       "Softmax", "LogSoftmax", "RMSNormalization", "MeanVarianceNormalization", "Hardmax",
       "LpNormalization", "LRN", "RotaryEmbedding", "Attention")
CASES = [(op, d) for op in OPS for d in registry.get(op).dtypes(registry.get(op).inputs[0].type)]
COMPOSITE_CASES = [(op, d) for op, d in CASES if registry.get(op).composite]


def assert_same(op: str, dtype: str, got, expected) -> None:
    assert_all_match(got, expected, SAMPLES[op].tolerance_for(dtype))


def _run_cast(op, inputs, attrs, n_outputs, compute: str, out_dtypes):
    """onnx.reference on inputs cast to ``compute``, outputs cast to ``out_dtypes``."""
    cast = [None if x is None else x.astype(compute) for x in inputs]
    return [y.astype(d) for y, d in zip(onnx_run(op, cast, attrs, n_outputs), out_dtypes)]


def oracle(op: str, inputs, attrs, n_outputs: int):
    """onnx.reference's outputs, at the precision ONNX specifies for the statistics."""
    dtype = inputs[0].dtype
    if op == "LayerNormalization":
        # stash_type 1: statistics in float32 whatever X is; onnx.reference uses X's dtype
        return _run_cast(op, inputs, attrs, n_outputs, "float32", [dtype, np.float32, np.float32])
    if op == "GroupNormalization":
        # ONNX's function body takes var = E[x^2] - E[x]^2, which cancels in float32: run it in float64
        return _run_cast(op, inputs, {**attrs, "stash_type": dt.onnx_code("float64")}, n_outputs,
                         "float64", [dtype])
    if op == "InstanceNormalization" and dtype == np.float16:
        return _run_cast(op, inputs, attrs, n_outputs, "float32", [dtype])  # float16 stats overflow
    if op == "BatchNormalization":
        # with mixed dtypes onnx.reference adds epsilon in the narrower one; compute in the widest
        # (float32 at least in training mode, whose statistics ONNX stashes in float32 for float16)
        out_dtypes = [dtype, inputs[3].dtype, inputs[4].dtype]
        if attrs.get("training_mode"):
            return _run_cast(op, inputs, attrs, n_outputs, np.result_type(*inputs, np.float32), out_dtypes)
        return _run_cast(op, inputs, attrs, n_outputs, np.result_type(*inputs), out_dtypes)
    if op == "LogSoftmax":
        # onnx.reference takes log(softmax(x)), which underflows to -inf where x - max(x) < log(tiny)
        return _run_cast(op, inputs, attrs, n_outputs, "float64", [dtype])
    if op == "RMSNormalization":
        # stash_type 1 (float32 statistics); onnx.reference computes in X's dtype and returns it
        return _run_cast(op, inputs, attrs, n_outputs, "float32", [inputs[1].dtype])
    if op == "LRN":
        return _lrn_oracle(inputs[0], attrs)
    if op == "MeanVarianceNormalization":
        return _mvn_oracle(inputs[0], attrs.get("axes", [0, 2, 3]))
    if op == "LpNormalization" and attrs.get("p") == 1:
        # onnx.reference sums x, not |x|: run it on |x| and restore the signs
        (y,) = onnx_run(op, [np.abs(inputs[0])], attrs)
        return [(np.sign(inputs[0]) * y).astype(dtype)]
    return onnx_run(op, inputs, attrs, n_outputs)


def _mvn_oracle(x: np.ndarray, axes) -> list[np.ndarray]:
    """ONNX's MeanVarianceNormalization function body run by onnx.reference, its float
    constants in x's dtype (as written, the body only type-checks for float32)."""
    consts = {"two": np.array(2, x.dtype), "eps": np.array(1e-9, x.dtype), "axes": np.array(axes, np.int64)}
    body = [("ReduceMean", ["X", "axes"], "mean"), ("Pow", ["mean", "two"], "mean_sq"),
            ("Pow", ["X", "two"], "x_sq"), ("ReduceMean", ["x_sq", "axes"], "sq_mean"),
            ("Sub", ["sq_mean", "mean_sq"], "var"), ("Sqrt", ["var"], "std"), ("Sub", ["X", "mean"], "dev"),
            ("Add", ["std", "eps"], "denominator"), ("Div", ["dev", "denominator"], "Y")]
    nodes = [helper.make_node(op, ins, [out]) for op, ins, out in body]
    code = helper.np_dtype_to_tensor_dtype(x.dtype)
    graph = helper.make_graph(nodes, "mvn", [helper.make_tensor_value_info("X", code, x.shape)],
                              [helper.make_tensor_value_info("Y", code, None)],
                              [numpy_helper.from_array(v, k) for k, v in consts.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    return ReferenceEvaluator(model).run(None, {"X": x})


def _lrn_oracle(x: np.ndarray, attrs) -> list[np.ndarray]:
    """onnx.reference's LRN loops over the batch where it means the channels, and takes
    4-D float inputs only: run it per image, tiled to as many images as channels, on the
    spatial dims flattened, in float32 (our float16 compute dtype)."""
    n, c = x.shape[:2]
    work = np.float32 if x.dtype == np.float16 else x.dtype
    flat = x.astype(work).reshape(n, c, int(np.prod(x.shape[2:])), 1)
    rows = [onnx_run("LRN", [np.repeat(flat[i:i + 1], c, axis=0)], attrs)[0][:1] for i in range(n)]
    y = np.concatenate(rows) if rows and c else flat
    return [y.reshape(x.shape).astype(x.dtype)]


def _n_outputs(s) -> int:
    return s.n_outputs or 1


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    n = _n_outputs(s)
    assert_same(op, dtype, ours(op, s.inputs, s.attrs, n), oracle(op, s.inputs, s.attrs, n))


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_infer_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    n = _n_outputs(s)
    got = ours(op, s.inputs, s.attrs, n)
    assert infer(op, s.inputs, s.attrs, n) == [TensorType(y.dtype.name, y.shape) for y in got]


@pytest.mark.parametrize("op,dtype", COMPOSITE_CASES)
@SETTINGS
@given(data=st.data())
def test_decomposition_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    n = _n_outputs(s)
    assert_same(op, dtype, decomposed(op, s.inputs, s.attrs, n), ours(op, s.inputs, s.attrs, n))


def test_samples_cover_declared_dtypes():
    for op in OPS:
        opdef = registry.get(op)
        assert set(SAMPLES[op].dtypes) == set(opdef.dtypes(opdef.inputs[0].type)), op


def _infer_types(op, types, attrs, n_outputs=1):
    opdef = registry.get(op)
    node = Node(op, [f"x{i}" for i in range(len(types))], [f"y{i}" for i in range(n_outputs)], attrs)
    return opdef.infer(InferContext(node, types, opdef.full_attrs(node), [None] * len(types)))


def test_batch_normalization_training_mode_uses_batch_statistics():
    x = np.array([[[1.0, 3.0]], [[5.0, 7.0]]], np.float32)  # N=2, C=1, D=2: mean 4, var 5
    one, zero = np.ones(1, np.float32), np.zeros(1, np.float32)
    attrs = {"training_mode": 1, "momentum": 0.5, "epsilon": 0.0}
    y, running_mean, running_var = ours("BatchNormalization", [x, one, zero, zero, one], attrs, 3)
    np.testing.assert_allclose(y.ravel(), (np.array([1, 3, 5, 7]) - 4) / np.sqrt(5), rtol=1e-6)
    np.testing.assert_allclose(running_mean, [2.0])
    np.testing.assert_allclose(running_var, [3.0])
    got = decomposed("BatchNormalization", [x, one, zero, zero, one], attrs, 3)
    assert_all_match(got, [y, running_mean, running_var], (1e-6, 1e-6))


def test_batch_normalization_inference_mode_has_one_output():
    c = TensorType("float32", (3,))
    types = [TensorType("float32", (2, 3, 4)), c, c, c, c]
    with pytest.raises(ShapeError, match="one output"):
        _infer_types("BatchNormalization", types, {}, n_outputs=3)
    y, mean, var = _infer_types("BatchNormalization", types, {"training_mode": 1}, n_outputs=3)
    assert y == types[0] and mean == var == c


def test_layer_normalization_stats_are_float32_with_reduced_shape():
    types = [TensorType("float16", ("N", 5, 6)), TensorType("float16", (5, 6))]
    y, mean, inv = _infer_types("LayerNormalization", types, {"axis": 1}, n_outputs=3)
    assert y == TensorType("float16", ("N", 5, 6))
    assert mean == inv == TensorType("float32", ("N", 1, 1))
    with pytest.raises(ShapeError, match="stash_type"):
        _infer_types("LayerNormalization", types, {"stash_type": 11})


def test_group_normalization_rejects_uneven_groups():
    types = [TensorType("float32", (1, 6, 4)), TensorType("float32", (6,)), TensorType("float32", (6,))]
    with pytest.raises(ShapeError, match="groups"):
        _infer_types("GroupNormalization", types, {"num_groups": 4})


def test_group_normalization_equals_instance_and_layer_normalization_at_the_extremes():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    scale, bias = rng.standard_normal(4).astype(np.float32), rng.standard_normal(4).astype(np.float32)
    (per_channel,) = ours("GroupNormalization", [x, scale, bias], {"num_groups": 4})
    (instance,) = ours("InstanceNormalization", [x, scale, bias])
    np.testing.assert_allclose(per_channel, instance, rtol=1e-5, atol=1e-5)
    (one_group,) = ours("GroupNormalization", [x, np.ones(4, np.float32), np.zeros(4, np.float32)],
                        {"num_groups": 1})
    (layer,) = ours("LayerNormalization", [x, np.ones((4, 3, 3), np.float32)], {"axis": 1})
    np.testing.assert_allclose(one_group, layer, rtol=1e-5, atol=1e-5)


def test_softmax_is_stable_for_large_inputs():
    x = np.array([[1000.0, 1001.0, 1002.0]], np.float32)
    (y,) = ours("Softmax", [x])
    np.testing.assert_allclose(y, ours("Softmax", [x - 1000])[0], rtol=1e-6)
    (log_y,) = decomposed("LogSoftmax", [x], {"axis": 1})
    assert np.isfinite(log_y).all()
    np.testing.assert_allclose(np.exp(log_y), y, rtol=1e-5)


def test_softmax_decomposition_subtracts_the_max():
    opdef = registry.get("Softmax")
    node = Node("Softmax", ["x"], ["y"], {}, name="s")
    names = iter(range(100))
    d = Decomposer(node, [TensorType("float32", (2, 3))], opdef.full_attrs(node), [None],
                   lambda base: f"{base}{next(names)}")
    opdef.decompose(d)
    assert [n.op for n in d.nodes] == ["ReduceMax", "Sub", "Exp", "ReduceSum", "Div"]
    assert d.nodes[-1].outputs == ["y"]


def test_hardmax_marks_the_first_maximum():
    x = np.array([[3.0, 1.0, 3.0], [0.0, np.nan, np.nan]], np.float32)
    (y,) = ours("Hardmax", [x])
    np.testing.assert_array_equal(y, [[1, 0, 0], [0, 1, 0]])
    (y0,) = ours("Hardmax", [x], {"axis": 0})
    np.testing.assert_array_equal(y0, [[1, 0, 0], [0, 1, 1]])


def test_lp_normalization_p1_uses_magnitudes_and_keeps_zero_rows():
    x = np.array([[-1.0, 3.0], [0.0, 0.0]], np.float32)
    (y,) = ours("LpNormalization", [x], {"p": 1})
    np.testing.assert_allclose(y, [[-0.25, 0.75], [0.0, 0.0]])
    with pytest.raises(ShapeError, match="p 1 and 2"):
        ours("LpNormalization", [x], {"p": 3})


def test_lrn_matches_onnx_node_case_formula():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3, 3)).astype(np.float32)
    attrs = {"alpha": 2e-4, "beta": 0.5, "bias": 2.0, "size": 3}
    square_sum = np.zeros_like(x)
    for c in range(5):
        square_sum[:, c] = np.sum(x[:, max(0, c - 1):min(5, c + 2)] ** 2, axis=1)
    want = x / (2.0 + 2e-4 / 3 * square_sum) ** 0.5
    np.testing.assert_allclose(ours("LRN", [x], attrs)[0], want, rtol=1e-6)
    with pytest.raises(ShapeError, match="rank >= 2"):
        _infer_types("LRN", [TensorType("float32", (4,))], {"size": 3})


def test_rms_normalization_output_has_the_scale_dtype():
    types = [TensorType("float16", ("N", 4)), TensorType("float32", (4,))]
    assert _infer_types("RMSNormalization", types, {}) == [TensorType("float32", ("N", 4))]


def test_rotary_embedding_rotates_pairs_by_the_cached_angle():
    x = np.array([[[[1.0, 0.0, 2.0, 0.0]]]], np.float32)  # batch 1, heads 1, seq 1, head 4
    angle = np.array([[np.pi / 2, 0.0]], np.float32)
    cos, sin = np.cos(angle), np.sin(angle)
    ids = np.zeros((1, 1), np.int64)
    (halves,) = ours("RotaryEmbedding", [x, cos, sin, ids])
    np.testing.assert_allclose(halves, [[[[-2.0, 0.0, 1.0, 0.0]]]], atol=1e-6)
    (pairs,) = ours("RotaryEmbedding", [x, cos, sin, ids], {"interleaved": 1})
    np.testing.assert_allclose(pairs, [[[[0.0, 1.0, 2.0, 0.0]]]], atol=1e-6)


def test_attention_fully_masked_rows_are_zero_and_gqa_repeats_kv_heads():
    rng = np.random.default_rng(2)
    q = rng.standard_normal((1, 4, 2, 3)).astype(np.float32)
    k = rng.standard_normal((1, 2, 3, 3)).astype(np.float32)
    v = rng.standard_normal((1, 2, 3, 5)).astype(np.float32)
    mask = np.array([[False, False, False], [True, True, False]])
    y, _, _, weights = ours("Attention", [q, k, v, mask], {"qk_matmul_output_mode": 3}, n_outputs=4)
    np.testing.assert_array_equal(y[:, :, 0], 0)
    np.testing.assert_allclose(weights[:, :, 1].sum(-1), 1, rtol=1e-6)
    (grouped,) = ours("Attention", [q, np.repeat(k, 2, axis=1), np.repeat(v, 2, axis=1), mask])
    np.testing.assert_allclose(y, grouped, rtol=1e-6)


def test_attention_infers_3d_and_cache_shapes():
    types = [TensorType("float32", ("B", 5, 8)), TensorType("float32", ("B", 7, 4)),
             TensorType("float32", ("B", 7, 6)), None, TensorType("float32", ("B", 2, 3, 2)),
             TensorType("float32", ("B", 2, 3, 3))]
    opdef = registry.get("Attention")
    node = Node("Attention", ["q", "k", "v", "", "pk", "pv"], ["y", "k2", "v2", "s"],
                {"q_num_heads": 4, "kv_num_heads": 2})
    y, key, value, scores = opdef.infer(InferContext(node, types, opdef.full_attrs(node), [None] * 6))
    assert y == TensorType("float32", ("B", 5, 12))
    assert key == TensorType("float32", ("B", 2, 10, 2)) and value == TensorType("float32", ("B", 2, 10, 3))
    assert scores == TensorType("float32", ("B", 4, 5, 10))
    with pytest.raises(ShapeError, match="q_num_heads"):
        _infer_types("Attention", types[:3], {})
