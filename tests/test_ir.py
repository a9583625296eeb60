"""The IR: types, verification errors, text form, builder, passes."""
from __future__ import annotations

import numpy as np
import pytest

import dh_core as dh
from dh_core.errors import GraphError, ShapeError
from dh_core.ir import Graph, Node, TensorType, Value
from dh_core.passes import eliminate_dead_code, fold_constants, infer_types


def test_tensor_type_text_and_symbols():
    t = TensorType("float32", ("N", 3, None))
    assert str(t) == "float32[N,3,?]"
    assert t.rank == 3 and not t.is_static
    assert TensorType("int64", (2, 3)).is_static
    assert str(TensorType("bool")) == "bool[?]"
    with pytest.raises(GraphError, match="unknown dtype 'float8'"):
        TensorType("float8", ())


def graph_with(nodes, inputs=("x",), outputs=("y",)):
    return Graph(nodes, [Value(i, TensorType("float32", (2,))) for i in inputs], [Value(o) for o in outputs])


@pytest.mark.parametrize("nodes, message", [
    ([Node("Frobnicate", ["x"], ["y"], name="n1")], "node 'n1': unknown op Frobnicate"),
    ([Node("Exp", ["z"], ["y"], name="n1")], "node 'n1': input 'z' is not defined before use"),
    ([Node("Exp", ["x"], ["y"], name="a"), Node("Exp", ["x"], ["y"], name="b")],
     "node 'b': output 'y' is assigned more than once"),
    ([Node("Exp", ["x"], ["y"], {"alpha": 1.0}, name="n1")], "node 'n1': Exp has no attribute 'alpha'"),
    ([Node("Cast", ["x"], ["y"], name="c")], "node 'c': Cast needs attribute 'to'"),
    ([Node("Add", ["x"], ["y"], name="add")], "node 'add': Add takes 2 inputs, got 1"),
    ([Node("Exp", ["x"], ["t"], name="n1")], "graph output 'y' is never produced"),
])
def test_verify_names_the_node(nodes, message):
    with pytest.raises(GraphError) as err:
        graph_with(nodes).verify()
    assert str(err.value) == message


def test_verify_accepts_outer_scope_names_in_subgraphs():
    body = Graph([Node("Add", ["x", "outer"], ["y"], name="inner")], [Value("x")], [Value("y")], name="body")
    body.verify(outer_scope={"outer"})
    with pytest.raises(GraphError, match="input 'outer' is not defined"):
        body.verify()


def test_builder_text_form_and_inference():
    b = dh.GraphBuilder("mlp")
    x = b.input("x", "float32", ("N", 4))
    w = b.constant(np.ones((4, 2), np.float32), name="w")
    y = b.Relu(b.MatMul(x, w, name="mm"), name="act", outputs=["y"])
    b.output(y)
    g = b.build()
    assert g.value_types["y"] == TensorType("float32", ("N", 2))
    text = str(g)
    assert "graph mlp (opset 28) (%x: float32[N,4]) -> (%y: float32[N,2])" in text
    assert "%w: float32[4,2] = initializer" in text
    mm_out = g.nodes[0].outputs[0]
    assert f"%{mm_out} = MatMul(%x, %w)  # mm" in text
    assert f"%y = Relu(%{mm_out})  # act" in text
    assert g.op_counts() == {"MatMul": 1, "Relu": 1}


def test_builder_rejects_reused_names():
    b = dh.GraphBuilder()
    b.input("x", "float32", (1,))
    with pytest.raises(ValueError, match="'x' is already used"):
        b.constant(np.zeros(1), name="x")


def test_inference_reports_dtype_mismatch_with_node():
    g = Graph([Node("Add", ["a", "b"], ["y"], name="mix")],
              [Value("a", TensorType("float32", (2,))), Value("b", TensorType("int64", (2,)))], [Value("y")])
    with pytest.raises(ShapeError, match="node 'mix': Add inputs bound to T disagree: float32 and int64"):
        infer_types(g)


def test_inference_reports_broadcast_failure():
    g = Graph([Node("Add", ["a", "b"], ["y"], name="bad")],
              [Value("a", TensorType("float32", (2, 3))), Value("b", TensorType("float32", (4,)))], [Value("y")])
    with pytest.raises(ShapeError, match="node 'bad'.*do not broadcast"):
        infer_types(g)


def test_fold_and_dce():
    g = Graph(
        [Node("Exp", ["c"], ["ec"], name="fold_me"),
         Node("Add", ["x", "ec"], ["y"], name="keep"),
         Node("Neg", ["x"], ["unused"], name="dead")],
        [Value("x", TensorType("float32", (2,)))], [Value("y")],
        {"c": np.array([0.0, 1.0], np.float32)})
    infer_types(g)
    fold_constants(g)
    eliminate_dead_code(g)
    assert [n.name for n in g.nodes] == ["keep"]
    np.testing.assert_allclose(g.initializers["ec"], np.exp([0.0, 1.0]), rtol=1e-6)
    assert "c" not in g.initializers


def test_dead_code_drops_optional_outputs_nothing_reads():
    x = Value("x", TensorType("float32", (1, 1, 4, 4)))
    g = Graph([Node("Dropout", ["x"], ["d", "mask"], name="drop"),
               Node("MaxPool", ["d"], ["p", "idx"], {"kernel_shape": [2, 2]}, name="pool"),
               Node("LSTM", ["seq", "w", "r"], ["", "h", "c"], {"hidden_size": 2}, name="lstm")],
              [x, Value("seq", TensorType("float32", (3, 1, 2))), Value("w", TensorType("float32", (1, 8, 2))),
               Value("r", TensorType("float32", (1, 8, 2)))],
              [Value("idx"), Value("c")])
    eliminate_dead_code(g)
    assert [n.outputs for n in g.nodes] == [["d"], ["p", "idx"], ["", "", "c"]]


def test_shape_of_static_input_folds():
    g = Graph([Node("Shape", ["x"], ["s"], name="shape")],
              [Value("x", TensorType("float32", (2, 5)))], [Value("s")])
    infer_types(g)
    fold_constants(g)
    assert not g.nodes
    np.testing.assert_array_equal(g.initializers["s"], [2, 5])
