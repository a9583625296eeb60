"""The dh command line: backends, run, info, conformance, and one-line errors."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dh_core import plugins
from dh_core.backend import KernelBackend
from dh_core.cli import main
from dh_core.plugins import BackendSpec, hookimpl

ort = pytest.importorskip("onnxruntime")

RNG = np.random.default_rng(1)


@pytest.fixture
def model_path(tmp_path) -> str:
    """x[N,2,4,4] -> Conv -> Relu -> Reshape [N,-1] -> Gemm -> y[N,3]."""
    inits = [numpy_helper.from_array(RNG.standard_normal(s).astype(np.float32), n)
             for n, s in (("w", (3, 2, 3, 3)), ("b", (3,)), ("fc", (48, 3)), ("fc_b", (3,)))]
    inits.append(numpy_helper.from_array(np.array([0, -1], np.int64), "flat_shape"))
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Reshape", ["r", "flat_shape"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fc", "fc_b"], ["y"], name="fc")]
    graph = helper.make_graph(nodes, "small_cnn",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])], inits)
    path = tmp_path / "model.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return str(path)


@pytest.fixture
def x_path(tmp_path) -> str:
    path = tmp_path / "x.npy"
    np.save(path, RNG.standard_normal((2, 2, 4, 4)).astype(np.float32))
    return str(path)


def dh_subprocess(*args: str) -> subprocess.CompletedProcess:
    script = shutil.which("dh")
    command = [script] if script else [sys.executable, "-m", "dh_core.cli"]
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=120, check=False)


def assert_one_error_line(stderr: str, *fragments: str) -> None:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dh: error: ")
    assert "Traceback" not in stderr
    for fragment in fragments:
        assert fragment in lines[0]


# -- dh backends --------------------------------------------------------------------
def test_backends_lists_cpu_as_available(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if " cpu " in line)
    assert "dh-backend-cpu" in row and "yes" in row


def test_backends_json(capsys):
    assert main(["backends", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["cpu"]["available"] is True
    assert rows["cpu"]["devices"] == ["cpu"]
    assert rows["cpu"]["distribution"] == "dh-backend-cpu"


def test_backends_subprocess_is_quick_and_light():
    start = time.perf_counter()
    done = dh_subprocess("backends", "--json")
    elapsed = time.perf_counter() - start
    print(f"dh backends --json took {elapsed:.2f} s")
    assert done.returncode == 0, done.stderr
    assert any(r["name"] == "cpu" and r["available"] is True for r in json.loads(done.stdout))
    timing = subprocess.run([sys.executable, "-X", "importtime", "-m", "dh_core.cli", "backends"],
                            capture_output=True, text=True, timeout=120, check=False)
    imported = {line.split("|")[-1].strip().split(".")[0] for line in timing.stderr.splitlines() if "|" in line}
    assert "cpu" in timing.stdout
    assert not imported & {"onnx", "onnxruntime", "hypothesis", "pytest"}


class HalfBackend(KernelBackend):
    """A host backend that only runs Relu."""

    name = "half"
    host_memory = True

    def __init__(self):
        from dh_backend_cpu.backend import reference_kernel

        self.kernels = {"Relu": reference_kernel}


class HalfPlugin:
    @hookimpl
    def dh_backends(self):
        return [BackendSpec("half", HalfBackend, description="Relu only")]


@pytest.fixture
def half_backend(monkeypatch):
    plugins.reset()
    monkeypatch.setattr(plugins, "_plugins", plugins.Plugins(extra=[HalfPlugin()]))
    yield
    plugins.reset()


def test_a_broken_backend_is_listed_with_its_reason(monkeypatch, capsys):
    class Broken:
        @hookimpl
        def dh_backends(self):
            def boom():
                raise RuntimeError("no driver")
            return [BackendSpec("broken", boom)]

    plugins.reset()
    monkeypatch.setattr(plugins, "_plugins", plugins.Plugins(extra=[Broken()]))
    try:
        assert main(["backends", "--json"]) == 0
    finally:
        plugins.reset()
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert "RuntimeError: no driver" in rows["broken"]["available"]
    assert rows["cpu"]["available"] is True


# -- dh run ---------------------------------------------------------------------------
def test_run_writes_outputs_like_onnxruntime(model_path, x_path, tmp_path, capsys):
    out = tmp_path / "out.npz"
    assert main(["run", model_path, "--input", f"x={x_path}", "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "y" in printed and "float32" in printed and "[2, 3]" in printed
    x = np.load(x_path)
    (expected,) = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    with np.load(out) as got:
        assert got.files == ["y"]
        assert got["y"].dtype == np.float32
        np.testing.assert_allclose(got["y"], expected, rtol=1e-5, atol=1e-5)


def test_run_as_a_subprocess(model_path, x_path, tmp_path):
    out = tmp_path / "sub.npz"
    done = dh_subprocess("run", model_path, "--input", f"x={x_path}", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    with np.load(out) as got:
        assert got["y"].shape == (2, 3)


def test_run_feeds_an_npz_by_name(model_path, x_path, tmp_path):
    feeds = tmp_path / "feeds.npz"
    np.savez(feeds, x=np.load(x_path))
    out_a, out_b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert main(["run", model_path, "--input", str(feeds), "--output", str(out_a)]) == 0
    assert main(["run", model_path, "--input", f"x={x_path}", "--output", str(out_b)]) == 0
    with np.load(out_a) as a, np.load(out_b) as b:
        np.testing.assert_array_equal(a["y"], b["y"])


def test_fallback_warnings_are_one_line_each(model_path, x_path, half_backend, capsys):
    assert main(["run", model_path, "--input", f"x={x_path}", "--backend", "half", "--fallback", "warn"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert all(line.startswith("dh: warning: node '") and "runs on the CPU" in line for line in err)
    fell_back = {line.split("'")[1] for line in err}
    assert {"conv", "flatten"} < fell_back  # and the Gemm, or the parts it decomposes into
    assert all(name in ("conv", "flatten") or name.startswith("fc") for name in fell_back)


def test_fallback_error_exits_1(model_path, x_path, half_backend, capsys):
    assert main(["run", model_path, "--input", f"x={x_path}", "--backend", "half", "--fallback", "error"]) == 1
    assert_one_error_line(capsys.readouterr().err, "node 'conv'", "half")


# -- dh info --------------------------------------------------------------------------
def test_info_text(model_path, capsys):
    assert main(["info", model_path]) == 0
    out = capsys.readouterr().out
    assert "opset 17" in out
    assert "float32[N,2,4,4]" in out and "float32[N,3]" in out
    for op in ("Conv", "Relu", "Reshape", "Gemm"):
        assert op in out
    assert f"{54 + 3 + 144 + 3 + 2} parameters" in out


def test_info_json(model_path, capsys):
    assert main(["info", model_path, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["opset"] == 17
    assert info["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["N", 2, 4, 4], "type": "float32[N,2,4,4]"}]
    assert info["outputs"][0]["shape"] == ["N", 3]
    assert info["ops"] == {"Conv": 1, "Gemm": 1, "Relu": 1, "Reshape": 1}
    assert info["parameters"] == {"tensors": 5, "count": 206, "bytes": 204 * 4 + 2 * 8}
    assert "plan" not in info


def test_info_plan_over_two_backends(model_path, half_backend, capsys):
    assert main(["info", model_path, "--backend", "half", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)["plan"]
    placed = {n["name"]: p["backend"] for p in plan["partitions"] for n in p["nodes"]}
    assert placed["relu"] == "half"
    assert {name for name, backend in placed.items() if backend == "cpu"} == set(plan["fallbacks"])
    assert {"conv", "flatten"} < set(plan["fallbacks"])
    assert main(["info", model_path, "--backend", "half,cpu"]) == 0
    out = capsys.readouterr().out
    assert "partition 1 on half" in out and "relu: Relu" in out


# -- dh conformance ---------------------------------------------------------------------
def test_conformance_writes_reports_and_returns_the_exit_code(tmp_path, capsys):
    report_json, report_md = tmp_path / "r.json", tmp_path / "r.md"
    code = main(["conformance", "--backend", "cpu", "--op", "Add", "Relu", "--dtype", "float32",
                 "--json", str(report_json), "--markdown", str(report_md), "--no-progress"])
    assert code == 0
    assert "Add" in capsys.readouterr().out
    assert "Relu" in report_json.read_text() and "Add" in report_md.read_text()
    json.loads(report_json.read_text())


def test_conformance_unknown_op_is_one_line(capsys):
    assert main(["conformance", "--backend", "cpu", "--op", "NoSuchOp", "--no-progress"]) == 1
    assert_one_error_line(capsys.readouterr().err, "NoSuchOp")


# -- errors -----------------------------------------------------------------------------
@pytest.fixture
def bad_inputs(tmp_path) -> dict[str, str]:
    paths = {"x64": (2, 2, 4, 4), "narrow": (2, 2, 4, 3)}
    out = {}
    for name, shape in paths.items():
        out[name] = str(tmp_path / f"{name}.npy")
        np.save(out[name], np.zeros(shape, np.float64 if name == "x64" else np.float32))
    out["junk"] = str(tmp_path / "junk.onnx")
    with open(out["junk"], "wb") as f:
        f.write(b"this is not a protobuf\xff\xff")
    return out


ERROR_CASES = {
    "missing model": (["run", "{tmp}/missing.onnx", "--input", "x={x}"], ["missing.onnx", "no such file"]),
    "bad input name": (["run", "{model}", "--input", "z={x}"], ["unknown input 'z'", "x"]),
    "wrong dtype": (["run", "{model}", "--input", "x={x64}"], ["input 'x'", "float64", "float32"]),
    "wrong shape": (["run", "{model}", "--input", "x={narrow}"], ["input 'x'", "[2, 2, 4, 3]"]),
    "non-ONNX model": (["info", "{junk}"], ["junk.onnx", "ONNX"]),
    "input file missing": (["run", "{model}", "--input", "x={tmp}/nothing.npy"], ["nothing.npy"]),
    "input file not numpy": (["run", "{model}", "--input", "x={junk}"], ["junk.onnx", "numpy"]),
    "unknown backend": (["info", "{model}", "--backend", "warp9"], ["warp9", "cpu"]),
    "missing input": (["run", "{model}"], ["missing input 'x'"]),
}


def fill(args: list[str], **paths: str) -> list[str]:
    return [a.format(**paths) for a in args]


@pytest.mark.parametrize("case", sorted(ERROR_CASES))
def test_user_errors_exit_1_with_one_line(case, model_path, x_path, bad_inputs, tmp_path, capsys):
    args, fragments = ERROR_CASES[case]
    assert main(fill(args, model=model_path, x=x_path, tmp=str(tmp_path), **bad_inputs)) == 1
    captured = capsys.readouterr()
    assert_one_error_line(captured.err, *fragments)


@pytest.mark.parametrize("case", ["missing model", "wrong dtype", "non-ONNX model"])
def test_user_errors_in_a_subprocess_show_no_traceback(case, model_path, x_path, bad_inputs, tmp_path):
    args, fragments = ERROR_CASES[case]
    done = dh_subprocess(*fill(args, model=model_path, x=x_path, tmp=str(tmp_path), **bad_inputs))
    assert done.returncode == 1
    assert_one_error_line(done.stderr, *fragments)


@pytest.mark.parametrize("args", [[], ["run"], ["run", "m.onnx", "--input", "no_equals_sign"],
                                  ["conformance"], ["conformance", "--backend", "cpu", "--dtype", "float99"],
                                  ["run", "m.onnx", "--fallback", "sometimes"]])
def test_usage_errors_exit_2(args, capsys):
    assert main(args) == 2
    assert "usage: dh" in capsys.readouterr().err


def test_help_covers_every_command(capsys):
    assert main(["--help"]) == 0
    top = capsys.readouterr().out
    for command in ("backends", "conformance", "run", "info", "convert"):
        assert command in top
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "examples:" in text and "--" in text


def test_writing_to_a_missing_directory_is_one_line(model_path, x_path, tmp_path, capsys):
    target = os.path.join(str(tmp_path), "no", "such", "dir", "out.npz")
    assert main(["run", model_path, "--input", f"x={x_path}", "--output", target]) == 1
    assert_one_error_line(capsys.readouterr().err, "out.npz")

