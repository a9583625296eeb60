"""``dh convert`` and the passes of ``--optimize``: Identity removal, BatchNormalization
folding, and outputs that onnxruntime computes alike before and after."""
from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dh_core import zoo
from dh_core.cli import main
from dh_core.ir import Graph, Node, TensorType, Value
from dh_core.onnx_io import export_model
from dh_core.onnx_io.exporter import newest_runtime_opset
from dh_core.passes import fold_batch_norm, optimize, remove_identities

from .test_cli import assert_one_error_line, dh_subprocess

ort = pytest.importorskip("onnxruntime")

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
RNG = np.random.default_rng(3)
RTOL, ATOL = 1e-4, 1e-5
"""float32 tolerance: folding reorders a multiply-add per channel."""


def ort_run(model: onnx.ModelProto | str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    source = model if isinstance(model, str) else model.SerializeToString()
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"]).run(None, feeds)


def random_feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for v in model.graph.input:
        if v.name not in inits:
            shape = [d.dim_value if d.HasField("dim_value") else 2 for d in v.type.tensor_type.shape.dim]
            feeds[v.name] = RNG.random(shape, dtype=np.float32)
    return feeds


def convert(src: str, dst: str, *options: str) -> onnx.ModelProto:
    assert main(["convert", src, dst, *options]) == 0
    model = onnx.load(dst)
    onnx.checker.check_model(model, full_check=True)
    return model


def assert_same_outputs(original: onnx.ModelProto, converted: onnx.ModelProto, feeds: dict) -> None:
    for got, want in zip(ort_run(converted, feeds), ort_run(original, feeds), strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


# -- dh convert on real architectures ---------------------------------------------------
@pytest.fixture
def resnet_path(tmp_path) -> str:
    path = str(tmp_path / "resnet.onnx")
    onnx.save(export_model(zoo.resnet(blocks=(1, 1), width=8, num_classes=10, image=32)), path)
    return path


def test_optimize_folds_every_batch_norm_of_a_resnet(resnet_path, tmp_path, capsys):
    original = onnx.load(resnet_path)
    converted = convert(resnet_path, str(tmp_path / "out.onnx"), "--optimize")
    ops = [n.op_type for n in converted.graph.node]
    assert "BatchNormalization" not in ops
    assert len(ops) == len(original.graph.node) - 6  # one BatchNormalization per Conv
    assert ops.count("Conv") == 6
    x = RNG.standard_normal((2, 3, 32, 32)).astype(np.float32)
    assert_same_outputs(original, converted, {"input": x})
    assert "(opset 28, 23 nodes)" in capsys.readouterr().out


def test_default_opset_is_the_newest_onnxruntime_loads_and_opset_is_honoured(resnet_path, tmp_path):
    assert convert(resnet_path, str(tmp_path / "a.onnx")).opset_import[0].version == newest_runtime_opset()
    old = convert(resnet_path, str(tmp_path / "b.onnx"), "--opset", "13")
    assert old.opset_import[0].version == 13
    x = RNG.standard_normal((1, 3, 32, 32)).astype(np.float32)
    assert_same_outputs(onnx.load(resnet_path), old, {"input": x})


def shipped_cases() -> list:
    paths = [p for kind in ("pytorch-converted", "pytorch-operator")
             for p in sorted(glob.glob(os.path.join(DATA, kind, "test_*", "model.onnx")))]
    return [pytest.param(p, id=os.path.basename(os.path.dirname(p))) for p in paths]


def read_tensors(data_dir: str, kind: str) -> list[np.ndarray]:
    arrays = []
    for i in range(len(glob.glob(os.path.join(data_dir, f"{kind}_*.pb")))):
        tensor = onnx.TensorProto()
        with open(os.path.join(data_dir, f"{kind}_{i}.pb"), "rb") as f:
            tensor.ParseFromString(f.read())
        arrays.append(numpy_helper.to_array(tensor))
    return arrays


@pytest.mark.parametrize("path", shipped_cases())
def test_optimized_pytorch_models_give_the_expected_outputs(path, tmp_path):
    """Judged by the case's expected outputs and onnx's runner tolerance (onnxruntime
    does not run every original, some are opset 6)."""
    original = onnx.load(path)
    plain = convert(path, str(tmp_path / "plain.onnx"))
    converted = convert(path, str(tmp_path / "out.onnx"), "--optimize")
    assert len(converted.graph.node) <= len(plain.graph.node)
    data = os.path.join(os.path.dirname(path), "test_data_set_0")
    inits = {t.name for t in original.graph.initializer}
    names = [v.name for v in original.graph.input if v.name not in inits]
    got = ort_run(converted, dict(zip(names, read_tensors(data, "input"))))
    for out, ref in zip(got, read_tensors(data, "output"), strict=True):
        assert out.dtype == ref.dtype and out.shape == ref.shape
        np.testing.assert_allclose(out, ref, rtol=1e-3, atol=1e-7)


@pytest.mark.parametrize("name", ["squeezenet", "resnet50", "inception_v1"])
def test_optimized_light_models_compute_the_same_with_fewer_nodes(name, tmp_path):
    path = os.path.join(DATA, "light", f"light_{name}.onnx")
    original = onnx.load(path)
    converted = convert(path, str(tmp_path / "out.onnx"), "--optimize")
    assert len(converted.graph.node) < len(original.graph.node)
    assert_same_outputs(original, converted, random_feeds(original))


# -- the passes ---------------------------------------------------------------------------
def bn_params(b, c: int) -> list:
    return [b.constant(RNG.uniform(0.5, 1.5, c).astype(np.float32)), b.constant(RNG.uniform(-1, 1, c).astype(np.float32)),
            b.constant(RNG.uniform(-1, 1, c).astype(np.float32)), b.constant(RNG.uniform(0.5, 1.5, c).astype(np.float32))]


def run_both(graph: Graph, feeds: dict) -> tuple[list, list, Graph]:
    before = ort_run(export_model(graph), feeds)
    folded = optimize(graph.copy())
    exported = export_model(folded)
    onnx.checker.check_model(exported, full_check=True)
    return before, ort_run(exported, feeds), folded


@pytest.mark.parametrize("trans_b, with_c", [(0, True), (1, True), (1, False)])
def test_batch_norm_folds_into_gemm(trans_b, with_c):
    import dh_core as dh

    b = dh.GraphBuilder()
    x = b.input("x", "float32", ("N", 4))
    w = b.constant(RNG.standard_normal((3, 4) if trans_b else (4, 3)).astype(np.float32))
    c = [b.constant(RNG.standard_normal(3).astype(np.float32))] if with_c else []
    y = b.Gemm(x, w, *c, transB=trans_b, alpha=0.5, beta=2.0)
    b.output(b.BatchNormalization(y, *bn_params(b, 3), epsilon=1e-3))
    before, after, folded = run_both(b.build(), {"x": RNG.standard_normal((5, 4)).astype(np.float32)})
    assert [n.op for n in folded.nodes] == ["Gemm"]
    np.testing.assert_allclose(after[0], before[0], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("with_add", [True, False])
def test_batch_norm_folds_into_matmul_and_its_bias(with_add):
    import dh_core as dh

    b = dh.GraphBuilder()
    x = b.input("x", "float32", ("N", 4))
    y = b.MatMul(x, b.constant(RNG.standard_normal((4, 3)).astype(np.float32)))
    if with_add:
        y = b.Add(y, b.constant(RNG.standard_normal(3).astype(np.float32)))
    b.output(b.BatchNormalization(y, *bn_params(b, 3)))
    before, after, folded = run_both(b.build(), {"x": RNG.standard_normal((5, 4)).astype(np.float32)})
    assert [n.op for n in folded.nodes] == ["MatMul", "Add"]
    np.testing.assert_allclose(after[0], before[0], rtol=RTOL, atol=ATOL)


def test_batch_norm_stays_when_the_conv_output_has_another_reader():
    import dh_core as dh

    b = dh.GraphBuilder()
    x = b.input("x", "float32", (1, 2, 5, 5))
    c = b.Conv(x, b.constant(RNG.standard_normal((3, 2, 3, 3)).astype(np.float32)))
    b.output(b.BatchNormalization(c, *bn_params(b, 3)))
    b.output(b.Relu(c))
    graph = b.build()
    fold_batch_norm(graph)
    assert [n.op for n in graph.nodes] == ["Conv", "BatchNormalization", "Relu"]


def test_batch_norm_on_a_3d_matmul_output_stays():
    import dh_core as dh

    b = dh.GraphBuilder()
    x = b.input("x", "float32", (2, 3, 4))
    y = b.MatMul(x, b.constant(RNG.standard_normal((4, 3)).astype(np.float32)))
    b.output(b.BatchNormalization(y, *bn_params(b, 3)))
    before, after, folded = run_both(b.build(), {"x": RNG.standard_normal((2, 3, 4)).astype(np.float32)})
    assert [n.op for n in folded.nodes] == ["MatMul", "BatchNormalization"]
    np.testing.assert_allclose(after[0], before[0], rtol=RTOL, atol=ATOL)


def test_identities_go_and_graph_names_stay():
    f32 = TensorType("float32", (2,))
    nodes = [Node("Identity", ["x"], ["a"], name="i1"), Node("Relu", ["a"], ["r"], name="relu"),
             Node("Identity", ["r"], ["y"], name="i2"), Node("Identity", ["x"], ["z"], name="i3")]
    graph = Graph(nodes, [Value("x", f32)], [Value("y", f32), Value("z", f32)])
    remove_identities(graph)
    assert [(n.name, n.inputs, n.outputs) for n in graph.nodes] == [("relu", ["x"], ["y"]), ("i3", ["x"], ["z"])]
    graph.verify()


def test_optimize_folds_constants_and_drops_dead_nodes():
    nodes = [Node("Add", ["c1", "c2"], ["k"], name="const_add"), Node("Mul", ["x", "k"], ["y"], name="mul"),
             Node("Neg", ["x"], ["unused"], name="dead")]
    graph = Graph(nodes, [Value("x", TensorType("float32", (2,)))], [Value("y")],
                  {"c1": np.ones(2, np.float32), "c2": np.full(2, 2, np.float32)})
    optimize(graph)
    assert [n.name for n in graph.nodes] == ["mul"]
    np.testing.assert_array_equal(graph.initializers["k"], [3, 3])
    assert set(graph.initializers) == {"k"}


# -- errors ----------------------------------------------------------------------------------
@pytest.fixture
def custom_op_path(tmp_path) -> str:
    graph = helper.make_graph([helper.make_node("Mystery", ["x"], ["y"], name="mystery", domain="com.example")],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    path = str(tmp_path / "custom.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21), helper.make_opsetid("com.example", 1)]),
              path)
    return path


@pytest.mark.parametrize("args, fragments", [
    (["{model}", "{tmp}/o.onnx", "--opset", "5"], ["opset 5", "13 to 28"]),
    (["{model}", "{tmp}/o.onnx", "--opset", "40"], ["opset 40"]),
    (["{junk}", "{tmp}/o.onnx"], ["junk.onnx", "not a readable ONNX file"]),
    (["{tmp}/none.onnx", "{tmp}/o.onnx"], ["none.onnx", "no such file"]),
    (["{model}", "{tmp}/no/dir/o.onnx"], ["o.onnx"]),
    (["{custom}", "{tmp}/o.onnx", "--optimize"], ["node 'mystery'", "Mystery"]),
])
def test_convert_errors_are_one_line_and_exit_1(args, fragments, resnet_path, custom_op_path, tmp_path, capsys):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x12\x34 not a model")
    filled = [a.format(model=resnet_path, tmp=tmp_path, junk=junk, custom=custom_op_path) for a in args]
    assert main(["convert", *filled]) == 1
    assert_one_error_line(capsys.readouterr().err, *fragments)
    assert not os.path.exists(tmp_path / "o.onnx")


def test_convert_without_optimize_keeps_custom_ops(custom_op_path, tmp_path):
    out = convert(custom_op_path, str(tmp_path / "o.onnx"))
    assert [(n.op_type, n.domain) for n in out.graph.node] == [("Mystery", "com.example")]


def test_convert_in_a_subprocess(resnet_path, tmp_path):
    done = dh_subprocess("convert", resnet_path, str(tmp_path / "o.onnx"), "--optimize", "--opset", "17")
    assert done.returncode == 0, done.stderr
    assert onnx.load(str(tmp_path / "o.onnx")).opset_import[0].version == 17
    done = dh_subprocess("convert", resnet_path)
    assert done.returncode == 2 and "usage: dh convert" in done.stderr


def test_large_weights_are_written_beside_the_model(resnet_path, tmp_path, monkeypatch):
    import dh_core.cli as cli

    monkeypatch.setattr(cli, "LARGE_MODEL_BYTES", 1000)
    out = tmp_path / "big.onnx"
    assert main(["convert", resnet_path, str(out)]) == 0
    assert (tmp_path / "big.onnx.data").stat().st_size > 1000
    bare = onnx.load(str(out), load_external_data=False)
    assert any(t.data_location == TensorProto.EXTERNAL for t in bare.graph.initializer)
    x = RNG.standard_normal((1, 3, 32, 32)).astype(np.float32)
    assert_same_outputs(onnx.load(resnet_path), onnx.load(str(out)), {"input": x})
