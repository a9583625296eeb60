"""ONNX import and export: structure, round trips, onnxruntime agreement, bad files."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import dh_core as dh
from dh_core.errors import GraphError, ModelLoadError
from dh_core.ir import Graph
from dh_core.onnx_io import export_model, import_model

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(0)


def weights(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def cnn_model(opset: int = 17) -> onnx.ModelProto:
    """Conv -> Relu -> Reshape to [N, -1] -> Gemm -> Relu -> MatMul, batch dim "N".

    Two nodes are unnamed and the reshape target is a Constant node."""
    inits = [
        numpy_helper.from_array(weights(4, 3, 3, 3), "conv_w"),
        numpy_helper.from_array(weights(4), "conv_b"),
        numpy_helper.from_array(weights(5, 4 * 5 * 5), "fc_w"),
        numpy_helper.from_array(weights(5), "fc_b"),
        numpy_helper.from_array(weights(5, 2), "out_w"),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "conv_w", "conv_b"], ["c"], name="conv", pads=[1, 1, 1, 1],
                         strides=[1, 1], kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Constant", [], ["target"], name="target_shape",
                         value=numpy_helper.from_array(np.array([0, -1], np.int64))),
        helper.make_node("Reshape", ["r", "target"], ["flat"], name="flatten"),
        helper.make_node("Gemm", ["flat", "fc_w", "fc_b"], ["h"], name="fc", transB=1, alpha=1.0),
        helper.make_node("Relu", ["h"], ["hr"]),
        helper.make_node("MatMul", ["hr", "out_w"], ["y"], name="head"),
    ]
    graph = helper.make_graph(
        nodes, "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 5, 5])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        inits,
        value_info=[helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 4, 5, 5])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    onnx.checker.check_model(model, full_check=True)
    return model


def ort_run(model: onnx.ModelProto, feeds: dict) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def reduce_model(opset: int) -> onnx.ModelProto:
    """ReduceMean with its axes as an attribute (opset < 18) or an input (opset >= 18)."""
    if opset < 18:
        node = helper.make_node("ReduceMean", ["x"], ["y"], name="mean", axes=[1], keepdims=0)
        inits = []
    else:
        node = helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=0)
        inits = [numpy_helper.from_array(np.array([1], np.int64), "axes")]
    graph = helper.make_graph([node], "reduce", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N"])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


# -- import ----------------------------------------------------------------------
def test_import_keeps_names_types_initializers_and_opset():
    g = import_model(cnn_model())
    assert g.opset == 17
    assert [n.name for n in g.nodes] == ["conv", "Relu_1", "flatten", "fc", "Relu_5", "head"]
    assert [n.op for n in g.nodes] == ["Conv", "Relu", "Reshape", "Gemm", "Relu", "MatMul"]
    conv = g.nodes[0]
    assert conv.attrs == {"pads": [1, 1, 1, 1], "strides": [1, 1], "kernel_shape": [3, 3]}
    assert g.nodes[3].attrs == {"transB": 1, "alpha": 1.0}
    assert g.inputs[0].name == "x" and g.inputs[0].type == dh.TensorType("float32", ("N", 3, 5, 5))
    assert g.outputs[0].type == dh.TensorType("float32", ("N", 2))
    assert g.value_types["c"] == dh.TensorType("float32", ("N", 4, 5, 5))
    np.testing.assert_array_equal(g.initializers["target"], [0, -1])
    assert g.initializers["target"].dtype == np.int64
    assert g.initializers["conv_w"].shape == (4, 3, 3, 3)
    g.verify()


def test_unknown_dims_and_unknown_rank_are_kept_as_none():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, "T", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    g = import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    assert g.inputs[0].type.shape == (None, "T", 3)
    assert g.outputs[0].type == dh.TensorType("float32", None)


@pytest.mark.parametrize("batch", [1, 3])
def test_imported_model_runs_like_onnxruntime(batch):
    model = cnn_model()
    x = RNG.standard_normal((batch, 3, 5, 5)).astype(np.float32)
    (expected,) = ort_run(model, {"x": x})
    (got,) = dh.Session(import_model(model)).run({"x": x})
    assert got.dtype == np.float32 and got.shape == (batch, 2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_import_from_a_path_reads_external_data(tmp_path):
    model = cnn_model()
    fc_w = numpy_helper.to_array(model.graph.initializer[2])
    x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    (expected,) = ort_run(model, {"x": x})
    path = tmp_path / "model.onnx"
    onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    assert (tmp_path / "weights.bin").stat().st_size > 4 * 100
    g = import_model(str(path))
    np.testing.assert_array_equal(g.initializers["fc_w"], fc_w)
    np.testing.assert_allclose(dh.Session(path).run({"x": x})[0], expected, rtol=1e-5, atol=1e-5)


def test_initializers_listed_as_inputs_are_not_inputs():
    model = cnn_model()
    model.graph.input.extend(helper.make_tensor_value_info(t.name, t.data_type, t.dims)
                             for t in model.graph.initializer)
    g = import_model(model)
    assert g.input_names == ["x"]
    assert "conv_w" in g.initializers


def test_reduce_axes_attribute_becomes_an_input_before_opset_18():
    g = import_model(reduce_model(13))
    (node,) = g.nodes
    assert "axes" not in node.attrs and node.attrs == {"keepdims": 0}
    assert node.inputs[0] == "x" and len(node.inputs) == 2
    np.testing.assert_array_equal(g.initializers[node.inputs[1]], [1])
    assert g.initializers[node.inputs[1]].dtype == np.int64


def test_unnamed_nodes_get_names_that_do_not_clash():
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["a"], name="Relu_1"), helper.make_node("Relu", ["a"], ["b"]),
         helper.make_node("Relu", ["b"], ["c"], name="twice"), helper.make_node("Relu", ["c"], ["y"], name="twice")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    g = import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    names = [n.name for n in g.nodes]
    assert names[0] == "Relu_1" and names[2] == "twice"
    assert len(set(names)) == 4


def test_attributes_of_every_kind_convert():
    then_branch = helper.make_graph([helper.make_node("Relu", ["x"], ["t"])], "then", [],
                                    [helper.make_tensor_value_info("t", TensorProto.FLOAT, [2])])
    else_branch = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [],
                                    [helper.make_tensor_value_info("e", TensorProto.FLOAT, [2])])
    nodes = [
        helper.make_node("LeakyRelu", ["x"], ["l"], alpha=0.25),
        helper.make_node("ConstantOfShape", ["shape"], ["c"], value=helper.make_tensor("v", TensorProto.INT32, [1], [7])),
        helper.make_node("Custom", ["x"], ["k"], domain="com.example", names=["a", "b"], scales=[0.5, 2.0], mode="fast"),
        helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch),
    ]
    graph = helper.make_graph(
        nodes, "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
         helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array([3], np.int64), "shape")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.example", 1)])
    g = import_model(model)
    leaky, const, custom, branch = g.nodes
    assert leaky.attrs["alpha"] == pytest.approx(0.25)
    assert isinstance(const.attrs["value"], np.ndarray) and const.attrs["value"].dtype == np.int32
    assert custom.domain == "com.example"
    assert custom.attrs == {"names": ["a", "b"], "scales": [0.5, 2.0], "mode": "fast"}
    assert isinstance(branch.attrs["then_branch"], Graph)
    assert [n.op for n in branch.attrs["else_branch"].nodes] == ["Neg"]
    with pytest.raises(GraphError, match="Custom.*com.example"):
        g.verify()
    onnx.checker.check_model(export_model(g), full_check=True)


def test_an_unknown_op_is_reported_with_its_node_name():
    graph = helper.make_graph([helper.make_node("Frobnicate", ["x"], ["y"], name="frob")], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    g = import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)]))
    with pytest.raises(GraphError, match="node 'frob': unknown op Frobnicate"):
        dh.Session(g)


# -- bad files ---------------------------------------------------------------------
def one_line_load_error(source, match: str) -> str:
    with pytest.raises(ModelLoadError, match=match) as info:
        import_model(source)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.onnx"
    assert "nope.onnx" in one_line_load_error(str(path), "no such file")


def test_directory(tmp_path):
    one_line_load_error(tmp_path, "directory")


@pytest.mark.parametrize("content", [b"", b"hello, this is not a model", b"\x08\xff\xff\xff"])
def test_non_onnx_bytes(tmp_path, content):
    path = tmp_path / "junk.onnx"
    path.write_bytes(content)
    assert "junk.onnx" in one_line_load_error(path, "ONNX")


def test_truncated_file(tmp_path):
    data = cnn_model().SerializeToString()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    assert "cut.onnx" in one_line_load_error(path, "not a readable ONNX file")


def test_missing_external_data(tmp_path):
    path = tmp_path / "model.onnx"
    onnx.save(cnn_model(), path, save_as_external_data=True, location="weights.bin", size_threshold=0)
    (tmp_path / "weights.bin").unlink()
    assert "model.onnx" in one_line_load_error(path, "model.onnx")


def test_unsupported_element_type():
    model = cnn_model()
    model.graph.initializer.append(helper.make_tensor("phase", TensorProto.COMPLEX64, [1], [1 + 2j]))
    one_line_load_error(model, "initializer 'phase' has element type COMPLEX64")


def test_map_input_is_refused():
    model = cnn_model()
    map_type = helper.make_map_type_proto(TensorProto.INT64, helper.make_tensor_type_proto(TensorProto.FLOAT, []))
    model.graph.input.append(helper.make_value_info("m", map_type))
    one_line_load_error(model, "value 'm' is a map")


def test_opsets_before_6_are_refused_naming_the_opset_when_their_ops_changed_since():
    graph = helper.make_graph([helper.make_node("Reshape", ["x"], ["y"], shape=[2])], "reshape",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    one_line_load_error(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 4)]),
                        "opset 4 is not supported")


def test_not_a_model_object():
    one_line_load_error(42, "int")


# -- export ------------------------------------------------------------------------
def test_round_trip_passes_the_checker_and_runs_alike():
    model = cnn_model()
    exported = export_model(import_model(model))
    onnx.checker.check_model(exported, full_check=True)
    assert exported.opset_import[0].version == 17
    assert [n.name for n in exported.graph.node] == ["conv", "Relu_1", "flatten", "fc", "Relu_5", "head"]
    dims = exported.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 3
    assert {v.name for v in exported.graph.value_info} >= {"c"}
    x = RNG.standard_normal((2, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(ort_run(exported, {"x": x})[0], ort_run(model, {"x": x})[0], rtol=1e-6)
    again = import_model(exported)
    assert [(n.op, n.inputs, n.outputs, n.name) for n in again.nodes] == \
        [(n.op, n.inputs, n.outputs, n.name) for n in import_model(model).nodes]


def test_export_writes_inferred_types_as_value_info():
    sess = dh.Session(cnn_model())
    exported = export_model(sess.graph)
    onnx.checker.check_model(exported, full_check=True)
    infos = {v.name: v for v in exported.graph.value_info}
    assert "flat" in infos
    dims = infos["flat"].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and dims[1].dim_value == 100


def test_builder_graph_exports_and_onnxruntime_agrees_with_session():
    b = dh.GraphBuilder("mlp")
    x = b.input("x", "float32", ("N", 4))
    h = b.Gemm(x, b.constant(weights(4, 8)), b.constant(weights(8)), alpha=1)
    y = b.MatMul(b.LeakyRelu(h, alpha=0.5), b.constant(weights(8, 3)))
    b.output(y)
    graph = b.build()
    exported = export_model(graph)
    onnx.checker.check_model(exported, full_check=True)
    assert exported.opset_import[0].version == graph.opset
    alpha = next(a for n in exported.graph.node for a in n.attribute if n.op_type == "Gemm")
    assert alpha.type == onnx.AttributeProto.FLOAT
    xs = RNG.standard_normal((5, 4)).astype(np.float32)
    np.testing.assert_allclose(ort_run(exported, {"x": xs})[0], dh.Session(graph).run({"x": xs})[0],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("source, target", [(13, 13), (13, 18), (18, 13), (18, 21)])
def test_reduce_axes_move_back_to_attributes_for_older_opsets(source, target):
    model = reduce_model(source)
    exported = export_model(import_model(model), opset=target)
    onnx.checker.check_model(exported, full_check=True)
    (node,) = exported.graph.node
    if target < 18:
        assert list(node.input) == ["x"]
        assert [list(a.ints) for a in node.attribute if a.name == "axes"] == [[1]]
        assert len(exported.graph.initializer) == 0
    else:
        assert len(node.input) == 2 and len(exported.graph.initializer) == 1
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_allclose(ort_run(exported, {"x": x})[0], ort_run(model, {"x": x})[0], rtol=1e-6)


def test_export_refuses_what_the_target_opset_cannot_express():
    b = dh.GraphBuilder()
    x = b.input("x", "float32", (2,))
    b.output(b.Gelu(x, name="gelu"))
    graph = b.build()
    with pytest.raises(GraphError, match="node 'gelu': op Gelu does not exist at opset 19"):
        export_model(graph, opset=19)
    with pytest.raises(GraphError, match="opset 12"):
        export_model(graph, opset=12)

    graph = Graph([dh.Node("ReduceMean", ["x", "axes"], ["y"], name="mean")],
                  [dh.Value("x", dh.TensorType("float32", (2, 3))), dh.Value("axes", dh.TensorType("int64", (1,)))],
                  [dh.Value("y")])
    with pytest.raises(GraphError, match="node 'mean'.*axes input 'axes' is not a constant"):
        export_model(graph, opset=17)


def test_default_valued_new_attributes_are_dropped_for_older_opsets():
    b = dh.GraphBuilder()
    x = b.input("x", "float32", (2,))
    b.output(b.Cast(x, to=TensorProto.FLOAT16, saturate=1, name="cast"))
    exported = export_model(b.build(), opset=17)
    onnx.checker.check_model(exported, full_check=True)
    assert [a.name for a in exported.graph.node[0].attribute] == ["to"]

    b = dh.GraphBuilder()
    x = b.input("x", "float32", (2,))
    b.output(b.Cast(x, to=TensorProto.FLOAT16, saturate=0, name="cast"))
    with pytest.raises(GraphError, match="node 'cast': Cast has no attribute 'saturate' at opset 17"):
        export_model(b.build(), opset=17)


def string_model(ml_opset: int = 4, encoder_attrs: dict | None = None) -> onnx.ModelProto:
    """Text in, a Constant of strings concatenated to it, then ai.onnx.ml LabelEncoder."""
    attrs = encoder_attrs or {"keys_strings": ["ab", "b"], "values_int64s": [1, 2], "default_int64": 0}
    nodes = [helper.make_node("Constant", [], ["suffix"], value_strings=["b", ""]),
             helper.make_node("StringConcat", ["x", "suffix"], ["joined"]),
             helper.make_node("LabelEncoder", ["joined"], ["y"], domain="ai.onnx.ml", **attrs)]
    graph = helper.make_graph(nodes, "strings", [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.INT64, [2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20),
                                                   helper.make_opsetid("ai.onnx.ml", ml_opset)])


def test_string_tensors_and_ml_ops_import_run_and_export():
    graph = import_model(string_model())
    assert graph.initializers["suffix"].tolist() == ["b", ""]
    assert graph.value_types["x"].dtype == "string"
    assert [n.domain for n in graph.nodes] == ["", "ai.onnx.ml"]
    x = np.array(["a", "b"], dtype=object)
    assert dh.Session(string_model()).run({"x": x})[0].tolist() == [1, 2]
    model = export_model(graph)
    onnx.checker.check_model(model)
    assert {o.domain: o.version for o in model.opset_import}["ai.onnx.ml"] == 5
    assert dh.Session(model).run({"x": x})[0].tolist() == [1, 2]
    assert ort_run(model, {"x": x})[0].tolist() == [1, 2]


def test_ml_opsets_are_checked_per_op():
    import_model(string_model(ml_opset=2))  # LabelEncoder 4 reads LabelEncoder 2 unchanged
    one_line_load_error(string_model(ml_opset=1, encoder_attrs={"classes_strings": ["ab"]}),
                        "LabelEncoder of opset 1 is not supported")
    one_line_load_error(string_model(ml_opset=6), "opset 6 of domain ai.onnx.ml is newer")
