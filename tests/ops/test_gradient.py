"""Gradient (ai.onnx.preview.training): every vector-Jacobian rule against central finite
differences in float64 (the independent oracle), broadcasting, zs, evaluation at other
points than the forward values, the errors, the passes and ONNX I/O, and onnx's two
model tests."""
from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from dh_core.errors import GraphError, ModelLoadError, ShapeError
from dh_core.ir import Graph, Node, TensorType, Value
from dh_core.onnx_io import export_model, import_model
from dh_core.ops import registry
from dh_core.ops.gradient import DOMAIN
from dh_core.ops.gradient_body import gradient_body
from dh_core.passes import eliminate_dead_code, remove_identities
from dh_core.session import Session
from tests.onnx_model_cases import collect_cases, data_sets

from .oracle import infer, ours

STEP = 1e-6
RTOL, ATOL = 1e-6, 1e-8
RNG = np.random.default_rng(7)


def normal(*shape) -> np.ndarray:
    return RNG.standard_normal(shape)


def positive(*shape) -> np.ndarray:
    return RNG.uniform(0.5, 2.0, shape)


def away_from_zero(*shape) -> np.ndarray:
    return RNG.choice([-1.0, 1.0], shape) * RNG.uniform(0.2, 2.0, shape)


def gradients(op: str, inputs: list, attrs: dict, xs: list[int], zs: tuple[int, ...] = ()) -> tuple[list, np.ndarray]:
    """dh's gradients of sum(w * op(inputs)) with respect to inputs ``xs`` (w random and
    fixed, so that every output element weighs differently); the inputs in neither xs
    nor zs are outer reads of the body."""
    names = [f"x{i}" for i in range(len(inputs))]
    out = ours(op, inputs, attrs)[0]
    outer = {"w": normal(*out.shape).astype(out.dtype)}
    outer.update({names[i]: x for i, x in enumerate(inputs) if i not in xs and i not in zs})
    forward = [Node(op, names, ["y"], attrs, name="fwd"), Node("Mul", ["y", "w"], ["t"], name="weigh")]
    node = Node("Gradient", [names[i] for i in (*xs, *zs)], [f"d{i}" for i in xs],
                {"xs": [names[i] for i in xs], "zs": [names[i] for i in zs], "y": "t"}, "grad", DOMAIN)
    counter = itertools.count()
    node.attrs["body"] = gradient_body(node, forward, set(names) | {"w"}, {}, lambda b: f"{b}_{next(counter)}",
                                       lambda b: f"{b}_{next(counter)}")
    got = registry.get("Gradient", DOMAIN).run_reference(node, [inputs[i] for i in (*xs, *zs)], outer)
    return got, outer["w"]


def finite_differences(op: str, inputs: list, attrs: dict, i: int, w: np.ndarray) -> np.ndarray:
    """Central differences of sum(w * op(inputs)) with respect to input ``i``."""
    x = inputs[i]
    grad = np.zeros_like(x)
    for index in np.ndindex(x.shape):
        shifted = []
        for sign in (1, -1):
            moved = x.copy()
            moved[index] += sign * STEP
            args = list(inputs)
            args[i] = moved
            shifted.append(np.sum(w * ours(op, args, attrs)[0]))
        grad[index] = (shifted[0] - shifted[1]) / (2 * STEP)
    return grad


def axes(*values) -> np.ndarray:
    return np.array(values, np.int64)


CASES = {  # id: (op, inputs, attrs, xs, zs)
    "Add": ("Add", [normal(3, 4), normal(3, 4)], {}, [0, 1], ()),
    "Add_broadcast": ("Add", [normal(2, 1, 3), normal(4, 1)], {}, [0, 1], ()),
    "Sub_broadcast": ("Sub", [normal(3, 4), normal(4)], {}, [0, 1], ()),
    "Mul_broadcast": ("Mul", [normal(1, 3), normal(2, 1)], {}, [0, 1], ()),
    "Mul_scalar": ("Mul", [normal(), normal(2, 3)], {}, [0, 1], ()),
    "Div_broadcast": ("Div", [normal(2, 3), away_from_zero(3)], {}, [0, 1], ()),
    "Neg": ("Neg", [normal(2, 3)], {}, [0], ()),
    "Abs": ("Abs", [away_from_zero(2, 3)], {}, [0], ()),
    "Exp": ("Exp", [normal(2, 3)], {}, [0], ()),
    "Log": ("Log", [positive(2, 3)], {}, [0], ()),
    "Sqrt": ("Sqrt", [positive(2, 3)], {}, [0], ()),
    "Reciprocal": ("Reciprocal", [away_from_zero(2, 3)], {}, [0], ()),
    "Pow": ("Pow", [positive(2, 3), normal(2, 3)], {}, [0, 1], ()),
    "Pow_broadcast": ("Pow", [positive(2, 3), normal(3)], {}, [0, 1], ()),
    "Relu": ("Relu", [away_from_zero(3, 4)], {}, [0], ()),
    "Sigmoid": ("Sigmoid", [normal(3, 4)], {}, [0], ()),
    "Tanh": ("Tanh", [normal(3, 4)], {}, [0], ()),
    "Identity": ("Identity", [normal(3)], {}, [0], ()),
    "Softmax": ("Softmax", [normal(3, 4)], {}, [0], ()),
    "Softmax_axis0": ("Softmax", [normal(3, 4)], {"axis": 0}, [0], ()),
    "MatMul": ("MatMul", [normal(3, 4), normal(4, 5)], {}, [0, 1], ()),
    "MatMul_batched": ("MatMul", [normal(2, 3, 4), normal(2, 4, 5)], {}, [0, 1], ()),
    "MatMul_broadcast": ("MatMul", [normal(2, 1, 3, 4), normal(3, 4, 2)], {}, [0, 1], ()),
    "MatMul_vector_matrix": ("MatMul", [normal(4), normal(2, 4, 3)], {}, [0, 1], ()),
    "MatMul_matrix_vector": ("MatMul", [normal(2, 3, 4), normal(4)], {}, [0, 1], ()),
    "MatMul_vectors": ("MatMul", [normal(4), normal(4)], {}, [0, 1], ()),
    "Gemm": ("Gemm", [normal(3, 4), normal(4, 5), normal(3, 5)], {}, [0, 1, 2], ()),
    "Gemm_transposed": ("Gemm", [normal(4, 3), normal(5, 4), normal(5)],
                        {"transA": 1, "transB": 1, "alpha": 0.5, "beta": -2.0}, [0, 1, 2], ()),
    "Gemm_no_C": ("Gemm", [normal(3, 4), normal(4, 2)], {"alpha": 1.5}, [0, 1], ()),
    "ReduceSum_axes": ("ReduceSum", [normal(2, 3, 4), axes(1, -1)], {"keepdims": 0}, [0], (1,)),
    "ReduceSum_keepdims": ("ReduceSum", [normal(2, 3, 4), axes(0)], {}, [0], (1,)),
    "ReduceSum_all": ("ReduceSum", [normal(2, 3)], {"keepdims": 0}, [0], ()),
    "ReduceSum_noop": ("ReduceSum", [normal(2, 3), axes()], {"noop_with_empty_axes": 1}, [0], (1,)),
    "ReduceMean_axes": ("ReduceMean", [normal(2, 3, 4), axes(2)], {"keepdims": 0}, [0], (1,)),
    "ReduceMean_all": ("ReduceMean", [normal(3, 4)], {}, [0], ()),
    "Reshape": ("Reshape", [normal(2, 3, 4), axes(4, -1)], {}, [0], (1,)),
    "Flatten": ("Flatten", [normal(2, 3, 4)], {"axis": 2}, [0], ()),
    "Squeeze": ("Squeeze", [normal(2, 1, 3), axes(1)], {}, [0], ()),
    "Unsqueeze": ("Unsqueeze", [normal(2, 3), axes(0, 3)], {}, [0], ()),
    "Expand": ("Expand", [normal(3, 1), axes(2, 3, 4)], {}, [0], (1,)),
    "Transpose": ("Transpose", [normal(2, 3, 4)], {"perm": [1, 2, 0]}, [0], ()),
    "Transpose_default": ("Transpose", [normal(2, 3, 4)], {}, [0], ()),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_rule_matches_central_finite_differences(case):
    op, inputs, attrs, xs, zs = CASES[case]
    got, w = gradients(op, inputs, attrs, xs, zs)
    assert len(got) == len(xs)
    for i, g in zip(xs, got):
        assert g.shape == inputs[i].shape and g.dtype == inputs[i].dtype
        np.testing.assert_allclose(g, finite_differences(op, inputs, attrs, i, w), rtol=RTOL, atol=ATOL,
                                   err_msg=f"d/d input {i}")


def test_cast_between_floats_passes_the_gradient_back_in_the_input_dtype():
    x = normal(2, 3)
    (got,), w = gradients("Cast", [x], {"to": TensorProto.FLOAT}, [0])
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, w.astype(np.float64), rtol=1e-6)


# -- through the importer and a session -----------------------------------------------
def model(nodes, inputs, outputs, initializers=()) -> onnx.ModelProto:
    """A model of 1-D float32 tensors at opset 18 that may hold Gradient nodes."""
    def info(name):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, ["n"])
    graph = helper.make_graph(nodes, "g", [info(n) for n in inputs], [info(n) for n in outputs],
                              list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid(DOMAIN, 1)])


def gradient(inputs, outputs, name="grad", **attrs):
    return helper.make_node("Gradient", inputs, outputs, name=name, domain=DOMAIN, **attrs)


def run(m: onnx.ModelProto, **feeds):
    return Session(import_model(m), backends=["cpu"], fallback="error").run(
        {k: np.asarray(v, np.float32) for k, v in feeds.items()})


def add_mul(grad_inputs, grad_outputs, **attrs):
    """d = (a + b) * a, and a Gradient of it."""
    return model([helper.make_node("Add", ["a", "b"], ["c"], name="add"),
                  helper.make_node("Mul", ["c", "a"], ["d"], name="mul"),
                  gradient(grad_inputs, grad_outputs, **attrs)],
                 ["a", "b", *[n for n in grad_inputs if n not in "ab"]], ["d", *[n for n in grad_outputs if n]])


def test_evaluated_at_its_inputs_not_at_the_forward_values():
    a, b, a1, b1 = normal(3), normal(3), normal(3), normal(3)
    m = add_mul(["a1", "b1"], ["da", "db"], xs=["a", "b"], y="d")
    d, da, db = run(m, a=a, b=b, a1=a1, b1=b1)
    np.testing.assert_allclose(d, (a + b) * a, rtol=1e-6)
    np.testing.assert_allclose(da, 2 * a1 + b1, rtol=1e-6)
    np.testing.assert_allclose(db, a1, rtol=1e-6)


def test_zs_are_inputs_of_the_slice_that_get_no_gradient():
    a, b, a1, b1 = normal(3), normal(3), normal(3), normal(3)
    m = add_mul(["a1", "b1"], ["da"], xs=["a"], zs=["b"], y="d")
    _, da = run(m, a=a, b=b, a1=a1, b1=b1)
    np.testing.assert_allclose(da, 2 * a1 + b1, rtol=1e-6)


def test_values_the_slice_reads_besides_xs_and_zs_are_the_forward_ones():
    a, b, a1 = normal(3), normal(3), normal(3)
    m = add_mul(["a1"], ["da"], xs=["a"], y="d")  # b is read from the graph
    _, da = run(m, a=a, b=b, a1=a1)
    np.testing.assert_allclose(da, 2 * a1 + b, rtol=1e-6)


def test_an_intermediate_tensor_can_be_the_variable():
    a, b, c1 = normal(3), normal(3), normal(3)
    m = add_mul(["c1", "a"], ["dc", "da"], xs=["c", "a"], y="d")
    graph = import_model(m)
    body = graph.nodes[-1].attrs["body"]
    assert [n.op for n in body.nodes] == ["Mul"]  # Add, which makes c, is cut off
    _, dc, da = run(m, a=a, b=b, c1=c1)
    np.testing.assert_allclose(dc, a, rtol=1e-6)
    np.testing.assert_allclose(da, c1, rtol=1e-6)


def test_skipped_outputs_and_variables_y_does_not_depend_on():
    a, b = normal(3), normal(3)
    m = model([helper.make_node("Exp", ["a"], ["e"], name="exp"), gradient(["a", "b"], ["", "db"], xs=["a", "b"],
                                                                          y="e")],
              ["a", "b"], ["e", "db"])
    _, db = run(m, a=a, b=b)
    np.testing.assert_array_equal(db, np.zeros(3, np.float32))


def test_output_types_are_those_of_the_inputs():
    (t,) = infer("Gradient", [np.zeros((2, 3), np.float64)], {"xs": ["x"], "y": "y"}, domain=DOMAIN)
    assert t == TensorType("float64", (2, 3))
    with pytest.raises(ShapeError, match="dtype int64; gradients are float16, float32, float64"):
        infer("Gradient", [np.zeros(3, np.int64)], {"xs": ["x"], "y": "y"}, domain=DOMAIN)


# -- errors -----------------------------------------------------------------------------
@pytest.mark.parametrize("attrs, message", [
    ({"xs": ["a", "q"], "y": "d"}, "node 'grad': Gradient names 'q', which the graph does not define"),
    ({"xs": ["a", "b"], "y": "nothing"}, "Gradient names 'nothing'"),
    ({"xs": ["a", "a"], "y": "d"}, "names a tensor twice"),
    ({"xs": ["a"], "y": "d"}, "Gradient has 2 inputs for 1 xs and 0 zs"),
])
def test_bad_names_are_load_errors_naming_the_node(attrs, message):
    with pytest.raises(ModelLoadError, match=message):
        import_model(add_mul(["a", "b"], ["da"], **attrs))


def test_y_that_does_not_depend_on_xs_or_zs_is_a_load_error():
    m = model([helper.make_node("Exp", ["b"], ["e"], name="exp"), gradient(["a"], ["da"], xs=["a"], y="e")],
              ["a", "b"], ["e", "da"])
    with pytest.raises(ModelLoadError, match="node 'grad': Gradient's y 'e' does not depend on xs or zs"):
        import_model(m)


def test_gradient_before_its_forward_nodes_is_a_load_error():
    m = model([gradient(["a"], ["da"], xs=["a"], y="e"), helper.make_node("Exp", ["a"], ["e"], name="exp")],
              ["a"], ["e", "da"])
    with pytest.raises(ModelLoadError, match="Gradient comes before the node that computes 'e'"):
        import_model(m)


def test_an_op_without_a_rule_is_an_error_naming_the_node_and_op():
    m = model([helper.make_node("Sin", ["a"], ["s"], name="sine"), gradient(["a"], ["da"], xs=["a"], y="s")],
              ["a"], ["s", "da"])
    with pytest.raises(GraphError, match=r"node 'grad/sine': Gradient has no rule to differentiate op Sin"):
        run(m, a=normal(3))


def test_a_node_without_its_body_breaks_the_schema():
    node = Node("Gradient", ["a"], ["da"], {"xs": ["a"], "y": "e"}, "grad", DOMAIN)
    graph = Graph([Node("Exp", ["a"], ["e"], name="exp"), node], [Value("a", TensorType("float32", (3,)))],
                  [Value("da")])
    with pytest.raises(GraphError, match="needs attribute 'body'"):
        graph.verify()


# -- passes and ONNX I/O ----------------------------------------------------------------
def hidden_y_model() -> onnx.ModelProto:
    """y is no graph output: only the Gradient names it (through an Identity)."""
    return model([helper.make_node("Mul", ["a", "a"], ["sq"], name="square"),
                  helper.make_node("Identity", ["sq"], ["y"], name="copy"),
                  gradient(["a"], ["da"], xs=["a"], y="y")], ["a"], ["da"])


def test_passes_keep_and_rename_the_tensors_a_gradient_names():
    graph = remove_identities(eliminate_dead_code(import_model(hidden_y_model())))
    assert [n.op for n in graph.nodes] == ["Mul", "Gradient"]
    assert graph.nodes[-1].attrs["y"] == "sq"
    graph.verify()
    exported = export_model(graph)
    onnx.checker.check_model(exported, full_check=True)
    assert [a.name for a in exported.graph.node[-1].attribute] == ["xs", "y"]
    assert exported.graph.node[-1].attribute[1].s == b"sq"


def test_round_trip_keeps_the_results():
    a = normal(4)
    m = hidden_y_model()
    exported = export_model(import_model(m))
    onnx.checker.check_model(exported, full_check=True)
    (first,) = run(m, a=a)
    (again,) = run(exported, a=a)
    np.testing.assert_allclose(first, 2 * a, rtol=1e-6)
    np.testing.assert_array_equal(again, first)


@pytest.mark.parametrize("case", [c for c in collect_cases() if "test_gradient_" in c.name], ids=lambda c: c.name)
def test_onnx_model_tests(case):
    proto = onnx.load(case.model_path)
    session = Session(import_model(case.model_path), backends=["cpu"], fallback="error")
    for inputs, expected in data_sets(case, proto):
        got = session.run(inputs)
        for out, ref in zip(got, expected):
            assert out.dtype == ref.dtype and out.shape == ref.shape
            np.testing.assert_allclose(out, ref, rtol=case.rtol, atol=case.atol)
