"""Opset normalization (onnx_io.normalize) and the ONNX backend adapter (onnx_io.backend):
models of old opsets run on dh as they run on ONNX Runtime."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import dh_core.onnx_io.backend as dh_backend
from dh_core.errors import GraphError, ModelLoadError
from dh_core.onnx_io import import_model

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)
FLOAT = TensorProto.FLOAT


def model(nodes, inputs, outputs, opset, inits=()) -> onnx.ModelProto:
    """A model of ``nodes``; inputs and outputs are (name, elem_type, shape) triples."""
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(*i) for i in inputs],
                              [helper.make_tensor_value_info(*o) for o in outputs],
                              [numpy_helper.from_array(a, n) for n, a in inits])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=7)


def same_as_ort(m: onnx.ModelProto, *feeds: np.ndarray) -> list[np.ndarray]:
    names = [i.name for i in m.graph.input]
    sess = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = sess.run(None, dict(zip(names, feeds)))
    actual = dh_backend.run_model(m, list(feeds))
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        assert a.dtype == e.dtype and a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)
    return list(actual)


def x(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def only_op(m: onnx.ModelProto, op: str):
    nodes = [n for n in import_model(m).nodes if n.op == op]
    assert len(nodes) == 1
    return nodes[0]


# -- attributes that became inputs ----------------------------------------------------
@pytest.mark.parametrize("op,opset", [("ReduceSum", 11), ("ReduceMean", 12), ("ReduceMax", 11)])
def test_reduce_axes_attribute(op, opset):
    m = model([helper.make_node(op, ["a"], ["y"], axes=[1, -1], keepdims=1)],
              [("a", FLOAT, [2, 3, 4])], [("y", FLOAT, None)], opset)
    assert "axes" not in only_op(m, op).attrs
    same_as_ort(m, x(2, 3, 4))


def test_split_attribute_and_equal_parts():
    sizes = model([helper.make_node("Split", ["a"], ["p", "q"], axis=1, split=[1, 3])],
                  [("a", FLOAT, [2, 4])], [("p", FLOAT, None), ("q", FLOAT, None)], 11)
    same_as_ort(sizes, x(2, 4))
    equal = model([helper.make_node("Split", ["a"], ["p", "q", "r"], axis=0)],
                  [("a", FLOAT, [6, 2])], [(n, FLOAT, None) for n in "pqr"], 13)
    assert only_op(equal, "Split").attrs["num_outputs"] == 3
    same_as_ort(equal, x(6, 2))


def test_squeeze_unsqueeze_axes_attribute():
    m = model([helper.make_node("Unsqueeze", ["a"], ["u"], axes=[0, 3]),
               helper.make_node("Squeeze", ["u"], ["y"], axes=[0])],
              [("a", FLOAT, [2, 3])], [("y", FLOAT, None)], 11)
    assert same_as_ort(m, x(2, 3))[0].shape == (2, 3, 1)


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
def test_pad_attributes(mode):
    m = model([helper.make_node("Pad", ["a"], ["y"], pads=[0, 1, 1, 2], mode=mode, value=1.5)],
              [("a", FLOAT, [3, 3])], [("y", FLOAT, None)], 10)
    same_as_ort(m, x(3, 3))


def test_pad_value_keeps_the_data_dtype():
    m = model([helper.make_node("Pad", ["a"], ["y"], pads=[1, 1], value=7.0)],
              [("a", TensorProto.DOUBLE, [2])], [("y", TensorProto.DOUBLE, None)], 9)
    np.testing.assert_array_equal(same_as_ort(m, np.array([1.0, 2.0]))[0], [7.0, 1.0, 2.0, 7.0])


@pytest.mark.parametrize("attrs", [{"min": -0.5, "max": 0.25}, {"min": 0.0}, {"max": -1.0}, {}])
def test_clip_attributes(attrs):
    m = model([helper.make_node("Clip", ["a"], ["y"], **attrs)], [("a", FLOAT, [4, 5])], [("y", FLOAT, None)], 6)
    same_as_ort(m, x(4, 5))


def test_slice_attributes():
    m = model([helper.make_node("Slice", ["a"], ["y"], starts=[1, -3], ends=[100, -1], axes=[0, 2])],
              [("a", FLOAT, [3, 4, 5])], [("y", FLOAT, None)], 9)
    assert same_as_ort(m, x(3, 4, 5))[0].shape == (2, 4, 2)


def test_topk_k_attribute():
    m = model([helper.make_node("TopK", ["a"], ["v", "i"], k=2, axis=1)],
              [("a", FLOAT, [3, 5])], [("v", FLOAT, None), ("i", TensorProto.INT64, None)], 9)
    same_as_ort(m, x(3, 5))


def test_dropout_ratio_attribute_is_an_inference_identity():
    m = model([helper.make_node("Dropout", ["a"], ["y"], ratio=0.3)], [("a", FLOAT, [2, 3])],
              [("y", FLOAT, None)], 10)
    a = x(2, 3)
    np.testing.assert_array_equal(same_as_ort(m, a)[0], a)


# -- renamed and replaced ops ---------------------------------------------------------
def test_upsample_becomes_resize():
    attr = model([helper.make_node("Upsample", ["a"], ["y"], scales=[1.0, 1.0, 2.0, 3.0], mode="nearest")],
                 [("a", FLOAT, [1, 2, 2, 3])], [("y", FLOAT, None)], 7)
    assert only_op(attr, "Resize").attrs["nearest_mode"] == "floor"
    same_as_ort(attr, x(1, 2, 2, 3))
    scales = np.array([1.0, 1.0, 2.0, 2.0], np.float32)
    linear = model([helper.make_node("Upsample", ["a", "s"], ["y"], mode="linear")],
                   [("a", FLOAT, [1, 1, 3, 3])], [("y", FLOAT, None)], 9, inits=[("s", scales)])
    same_as_ort(linear, x(1, 1, 3, 3))


@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_resize_10_keeps_its_coordinates(mode):
    scales = np.array([1.0, 1.0, 1.5, 2.5], np.float32)
    m = model([helper.make_node("Resize", ["a", "s"], ["y"], mode=mode)],
              [("a", FLOAT, [1, 2, 4, 3])], [("y", FLOAT, None)], 10, inits=[("s", scales)])
    same_as_ort(m, x(1, 2, 4, 3))


def test_resize_11_empty_roi_and_scales_are_omitted():
    empty = np.zeros(0, np.float32)
    sizes = np.array([1, 1, 5, 7], np.int64)
    m = model([helper.make_node("Resize", ["a", "roi", "scales", "sizes"], ["y"], mode="linear")],
              [("a", FLOAT, [1, 1, 3, 4])], [("y", FLOAT, None)], 11,
              inits=[("roi", empty), ("scales", empty), ("sizes", sizes)])
    assert only_op(m, "Resize").inputs[1:3] == ["", ""]
    same_as_ort(m, x(1, 1, 3, 4))


def test_batchnorm_spatial_one_is_dropped_and_zero_refused():
    params = [(n, RNG.uniform(0.5, 1.5, 3).astype(np.float32)) for n in ("s", "b", "m", "v")]
    node = helper.make_node("BatchNormalization", ["a", "s", "b", "m", "v"], ["y"], spatial=1)
    m = model([node], [("a", FLOAT, [2, 3, 4])], [("y", FLOAT, None)], 7, inits=params)
    same_as_ort(m, x(2, 3, 4))
    m.graph.node[0].attribute[0].i = 0
    with pytest.raises(ModelLoadError, match="spatial=0"):
        import_model(m)


# -- semantic changes -----------------------------------------------------------------
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [None, 0, 2, -1])
def test_softmax_before_13_works_on_the_input_coerced_to_2d(op, axis):
    attrs = {} if axis is None else {"axis": axis}
    m = model([helper.make_node(op, ["a"], ["y"], **attrs)], [("a", FLOAT, [2, 3, 4])], [("y", FLOAT, None)], 11)
    a = x(2, 3, 4)
    got = same_as_ort(m, a)[0]
    k = 1 if axis is None else axis % 3
    flat = a.reshape(int(np.prod(a.shape[:k])), -1).astype(np.float64)
    e = np.exp(flat - flat.max(axis=1, keepdims=True))
    soft = e / e.sum(axis=1, keepdims=True)
    expected = soft if op == "Softmax" else np.log(soft)
    np.testing.assert_allclose(got, expected.reshape(a.shape), rtol=1e-5, atol=1e-6)


def test_group_normalization_before_21_is_refused():
    node = helper.make_node("GroupNormalization", ["a", "s", "b"], ["y"], num_groups=2)
    m = model([node], [("a", FLOAT, [1, 4, 3])], [("y", FLOAT, None)], 18,
              inits=[("s", np.ones(2, np.float32)), ("b", np.zeros(2, np.float32))])
    with pytest.raises(ModelLoadError, match="per-group scale"):
        import_model(m)


def test_models_older_than_7_load_when_their_ops_are_unchanged():
    m = model([helper.make_node("Not", ["a"], ["y"])], [("a", TensorProto.BOOL, [3])],
              [("y", TensorProto.BOOL, None)], 1)
    np.testing.assert_array_equal(dh_backend.run_model(m, [np.array([True, False, True])])[0], [False, True, False])


# -- the backend adapter --------------------------------------------------------------
def test_prepare_accepts_the_runner_device_and_returns_outputs_by_position_and_name():
    m = model([helper.make_node("Add", ["a", "b"], ["y"]), helper.make_node("Neg", ["y"], ["z"])],
              [("a", FLOAT, [2]), ("b", FLOAT, [2])], [("y", FLOAT, None), ("z", FLOAT, None)], 17)
    rep = dh_backend.prepare(m, "CPU")
    out = rep.run([np.float32([1, 2]), np.float32([3, 4])])
    np.testing.assert_array_equal(out[0], [4, 6])
    np.testing.assert_array_equal(out.z, [-4, -6])
    by_name = rep.run({"b": np.float32([0, 0]), "a": np.float32([1, 1])})
    np.testing.assert_array_equal(by_name.y, [1, 1])


def test_run_node_and_supports_device():
    node = helper.make_node("Gemm", ["a", "b"], ["y"], transB=1, alpha=2.0)
    a, b = x(2, 3), x(4, 3)
    (y,) = dh_backend.run_node(node, [a, b], "cpu")
    np.testing.assert_allclose(y, 2 * a @ b.T, rtol=1e-5, atol=1e-6)
    assert dh_backend.supports_device("CPU") and dh_backend.supports_device("cpu")
    assert not dh_backend.supports_device("CUDA")
    assert not dh_backend.supports_device("no-such-backend:0")


def test_an_op_dh_does_not_know_raises():
    node = helper.make_node("Relu", ["a"], ["y"], domain="com.example")
    with pytest.raises(GraphError, match="unknown op Relu in domain 'com.example'"):
        dh_backend.run_node(node, [x(2)], "cpu")


# -- opset 6 ----------------------------------------------------------------------------
@pytest.mark.parametrize("axis,b_shape", [(1, (3,)), (0, (2, 3)), (2, (4, 5)), (None, (5,))])
def test_opset_6_broadcast_aligns_the_second_operand_at_axis(axis, b_shape):
    attrs = {"broadcast": 1} if axis is None else {"broadcast": 1, "axis": axis}
    m = model([helper.make_node("Sub", ["a", "b"], ["y"], **attrs)],
              [("a", FLOAT, [2, 3, 4, 5]), ("b", FLOAT, list(b_shape))], [("y", FLOAT, None)], 6)
    a, b = x(2, 3, 4, 5), x(*b_shape)
    start = 4 - len(b_shape) if axis is None else axis
    expected = a - b.reshape(b_shape + (1,) * (4 - start - len(b_shape)))
    np.testing.assert_allclose(dh_backend.run_model(m, [a, b])[0], expected, rtol=1e-6)


def test_opset_6_prelu_slope_is_per_channel():
    slope = np.array([0.1, 0.2, 0.3], np.float32)
    m = model([helper.make_node("PRelu", ["a", "s"], ["y"])], [("a", FLOAT, [2, 3, 4])], [("y", FLOAT, None)], 6,
              inits=[("s", slope)])
    a = x(2, 3, 4)
    np.testing.assert_allclose(dh_backend.run_model(m, [a])[0], np.where(a < 0, a * slope.reshape(3, 1), a))


def test_opset_6_gemm_drops_broadcast():
    m = model([helper.make_node("Gemm", ["a", "b", "c"], ["y"], broadcast=1, transB=1)],
              [("a", FLOAT, [2, 3]), ("b", FLOAT, [4, 3]), ("c", FLOAT, [4])], [("y", FLOAT, None)], 6)
    a, b, c = x(2, 3), x(4, 3), x(4)
    assert "broadcast" not in only_op(m, "Gemm").attrs
    np.testing.assert_allclose(dh_backend.run_model(m, [a, b, c])[0], a @ b.T + c, rtol=1e-5, atol=1e-6)


def test_clip_bounds_take_the_declared_dtype_or_follow_the_data():
    declared = model([helper.make_node("Clip", ["a"], ["y"], min=-1.0, max=1.0)],
                     [("a", TensorProto.DOUBLE, [3])], [("y", TensorProto.DOUBLE, None)], 6)
    g = import_model(declared)
    assert [n.op for n in g.nodes] == ["Clip"]
    assert [g.initializers[i].dtype for i in g.nodes[0].inputs[1:]] == [np.float64, np.float64]
    undeclared = model([helper.make_node("Relu", ["a"], ["r"]), helper.make_node("Clip", ["r"], ["y"], min=0.5)],
                       [("a", TensorProto.FLOAT16, [3])], [("y", TensorProto.FLOAT16, None)], 6)
    assert [n.op for n in import_model(undeclared).nodes] == ["Relu", "CastLike", "Clip"]
    out = dh_backend.run_model(undeclared, [np.array([-1, 0.25, 2], np.float16)])[0]
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out, [0.5, 0.5, 2])


def _scan8(sequence_lens: str = "", directions=None) -> onnx.ModelProto:
    """Scan 8 over a batch of 2: a running sum (state [3]) of 4 slices of [3], emitted each step."""
    body = helper.make_graph([helper.make_node("Add", ["s", "x_t"], ["s_out"]),
                              helper.make_node("Identity", ["s_out"], ["y"])], "body",
                             [helper.make_tensor_value_info("s", FLOAT, [3]),
                              helper.make_tensor_value_info("x_t", FLOAT, [3])],
                             [helper.make_tensor_value_info("s_out", FLOAT, [3]),
                              helper.make_tensor_value_info("y", FLOAT, [3])])
    attrs = {"body": body, "num_scan_inputs": 1}
    if directions is not None:
        attrs["directions"] = directions
    node = helper.make_node("Scan", [sequence_lens, "init", "xs"], ["final", "ys"], **attrs)
    return model([node], [("init", FLOAT, [2, 3]), ("xs", FLOAT, [2, 4, 3])],
                 [("final", FLOAT, [2, 3]), ("ys", FLOAT, [2, 4, 3])], 8)


@pytest.mark.parametrize("directions", [None, [1]])
def test_scan_8_runs_per_batch_row(directions):
    same_as_ort(_scan8(directions=directions), x(2, 3), x(2, 4, 3))


def test_scan_8_with_sequence_lengths_is_refused():
    m = _scan8("lens")
    m.graph.input.append(helper.make_tensor_value_info("lens", TensorProto.INT64, [2]))
    with pytest.raises(ModelLoadError, match="sequence_lens"):
        import_model(m)
