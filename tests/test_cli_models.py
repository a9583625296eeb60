"""``dh info`` on large models without touching their weights, and the CLI's answer to
bad models and bad inputs: one ``dh: error:`` line, exit status 1, no traceback."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dh_core.cli import main
from dh_core.onnx_io import import_model

from .test_cli import assert_one_error_line, dh_subprocess

ort = pytest.importorskip("onnxruntime")

WIDTH = 256


def mlp(path, external: bool = False) -> str:
    """x[N,256] -> MatMul(w: 256x256) -> Add(b) -> y, saved at ``path``."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((WIDTH, WIDTH), dtype=np.float32), "w"),
             numpy_helper.from_array(np.zeros(WIDTH, np.float32), "b")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
             helper.make_node("Add", ["m", "b"], ["y"], name="bias")]
    graph = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", WIDTH])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", WIDTH])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    if external:
        onnx.save(model, str(path), save_as_external_data=True, location="weights.bin", size_threshold=1024)
    else:
        onnx.save(model, str(path))
    return str(path)


# -- dh info without the weights ----------------------------------------------------------
def test_describing_a_model_does_not_convert_large_tensors(tmp_path):
    graph = import_model(mlp(tmp_path / "m.onnx"), load_data=False)
    w, b = graph.initializers["w"], graph.initializers["b"]
    assert w.shape == (WIDTH, WIDTH) and w.dtype == np.float32 and w.nbytes == WIDTH * WIDTH * 4
    assert w.strides == (0, 0) and not w.flags.writeable
    assert b.strides == (4,)  # small tensors are read: normalization may look at them
    full = import_model(str(tmp_path / "m.onnx"))
    assert full.initializers["w"].strides == (WIDTH * 4, 4)


def test_info_never_reads_external_weights(tmp_path, capsys):
    path = mlp(tmp_path / "m.onnx", external=True)
    (tmp_path / "weights.bin").write_bytes(b"")  # present, but its data would not load
    assert main(["info", path, "--json"]) == 0
    params = json.loads(capsys.readouterr().out)["parameters"]
    assert params == {"tensors": 2, "count": WIDTH * WIDTH + WIDTH, "bytes": (WIDTH * WIDTH + WIDTH) * 4}
    assert main(["run", path]) == 1  # running needs the data: the empty file is an error
    assert_one_error_line(capsys.readouterr().err, "m.onnx", "'w'")


def test_info_with_a_plan_reads_the_weights(tmp_path, capsys):
    path = mlp(tmp_path / "m.onnx", external=True)
    assert main(["info", path, "--backend", "cpu", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    assert {n["name"] for p in plan["partitions"] for n in p["nodes"]} == {"matmul", "bias"}


# -- bad models -------------------------------------------------------------------------------
def save(model: onnx.ModelProto, path) -> str:
    with open(path, "wb") as f:
        f.write(model.SerializeToString())
    return str(path)


@pytest.fixture
def bad_models(tmp_path) -> dict[str, str]:
    good = mlp(tmp_path / "good.onnx")
    with open(good, "rb") as f:
        data = f.read()
    paths = {"good": good}
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 3])
    paths["truncated"] = str(tmp_path / "truncated.onnx")
    (tmp_path / "text.onnx").write_text("name,value\nx,1\n")
    paths["text"] = str(tmp_path / "text.onnx")

    dangling = onnx.load(good)
    dangling.graph.node[1].input[0] = "nowhere"
    paths["dangling"] = save(dangling, tmp_path / "dangling.onnx")

    unknown = onnx.load(good)
    unknown.graph.node[0].op_type = "MatMulPlus"
    paths["unknown_op"] = save(unknown, tmp_path / "unknown_op.onnx")

    custom = onnx.load(good)
    custom.graph.node[0].domain = "com.vendor"
    custom.opset_import.append(helper.make_opsetid("com.vendor", 1))
    paths["custom_domain"] = save(custom, tmp_path / "custom_domain.onnx")

    bad_attr = onnx.load(good)
    bad_attr.graph.node[0].attribute.append(helper.make_attribute("transA", 1))
    paths["bad_attr"] = save(bad_attr, tmp_path / "bad_attr.onnx")

    external = mlp(tmp_path / "external.onnx", external=True)
    (tmp_path / "weights.bin").unlink()
    paths["external"] = external
    return paths


@pytest.fixture
def inputs(tmp_path) -> dict[str, str]:
    arrays = {"x": np.zeros((2, WIDTH), np.float32), "x_int": np.zeros((2, WIDTH), np.int32),
              "x_narrow": np.zeros((2, WIDTH - 1), np.float32), "x_rank": np.zeros(WIDTH, np.float32)}
    paths = {}
    for name, arr in arrays.items():
        paths[name] = str(tmp_path / f"{name}.npy")
        np.save(paths[name], arr)
    return paths


BAD_MODEL_CASES = {
    "truncated": ["truncated.onnx", "not a readable ONNX file"],
    "text": ["text.onnx", "ONNX"],
    "dangling": ["node 'bias'", "'nowhere'", "not defined"],
    "unknown_op": ["node 'matmul'", "MatMulPlus"],
    "custom_domain": ["node 'matmul'", "MatMul", "com.vendor"],
    "bad_attr": ["node 'matmul'", "transA"],
    "external": ["external.onnx", "'w'", "weights.bin"],
}


@pytest.mark.parametrize("case", sorted(BAD_MODEL_CASES))
def test_run_refuses_a_bad_model_in_one_line(case, bad_models, inputs, capsys):
    assert main(["run", bad_models[case], "--input", f"x={inputs['x']}"]) == 1
    assert_one_error_line(capsys.readouterr().err, *BAD_MODEL_CASES[case])


@pytest.mark.parametrize("case", ["truncated", "dangling", "external"])
def test_bad_models_in_a_subprocess_show_no_traceback(case, bad_models, inputs):
    done = dh_subprocess("run", bad_models[case], "--input", f"x={inputs['x']}")
    assert done.returncode == 1
    assert_one_error_line(done.stderr, *BAD_MODEL_CASES[case])


def test_the_bad_models_fail_the_onnx_checker_too(bad_models):
    """The cases above are models the ONNX checker refuses as well (so dh's answer is
    the checker-failure case), except the unreadable files it cannot even parse."""
    for case in ("dangling", "unknown_op", "bad_attr"):
        with pytest.raises(onnx.checker.ValidationError):
            onnx.checker.check_model(onnx.load(bad_models[case]), full_check=True)


BAD_INPUT_CASES = {
    "x_int": ["input 'x'", "int32", "float32"],
    "x_narrow": ["input 'x'", f"[2, {WIDTH - 1}]"],
    "x_rank": ["input 'x'", f"[{WIDTH}]"],
}


@pytest.mark.parametrize("case", sorted(BAD_INPUT_CASES))
def test_run_refuses_a_wrong_input_in_one_line(case, bad_models, inputs, capsys):
    assert main(["run", bad_models["good"], "--input", f"x={inputs[case]}"]) == 1
    assert_one_error_line(capsys.readouterr().err, *BAD_INPUT_CASES[case])


def test_wrong_input_in_a_subprocess(bad_models, inputs):
    done = dh_subprocess("run", bad_models["good"], "--input", f"x={inputs['x_int']}")
    assert done.returncode == 1
    assert_one_error_line(done.stderr, *BAD_INPUT_CASES["x_int"])
