"""The conformance suite itself: it finds planted bugs with small examples, honours
the manifest strictly, reports unsupported cases, and writes its reports."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from dh_core import dtypes as dt
from dh_core.backend import Device, KernelBackend, returns_tuple
from dh_core.conformance import runtime_checks
from dh_core.conformance.pytest_plugin import Conformance, _case_params
from dh_core.conformance.report import Failure, Report
from dh_core.conformance.runner import Mode, run_suite
from dh_core.ops import registry


def reference_kernel(node, types):
    """A correct kernel: the op's numpy reference."""
    opdef = registry.get(node.op)
    n = len(node.outputs)

    def kernel(*xs):
        outs = opdef.run_reference(node, list(xs))[:n]
        return tuple(outs) if returns_tuple(node) else outs[0]

    return kernel


class Planted(KernelBackend):
    """Host-memory backend running the references, except for the kernels given."""

    name = "planted"
    host_memory = True

    def __init__(self, drop=(), dtypes=None, **kernels):
        self.kernels = {op.name: reference_kernel for op in registry.all_ops()
                        if not op.domain and op.name not in drop}
        self.kernels.update(kernels)
        self.dtypes = dtypes or {}


def relu_passes_negatives(node, types):
    return lambda x: x.copy()


def exp_off_above_one(node, types):
    return lambda x: np.where(x > 1, np.exp(x) * x.dtype.type(1.001), np.exp(x)).astype(x.dtype)


def raising(node, types):
    def kernel(*xs):
        raise RuntimeError("device lost")

    return kernel


# -- tier 1: op properties -------------------------------------------------------------
def test_wrong_relu_fails_with_the_shrunk_example_and_correct_ops_pass():
    report = run_suite(Planted(Relu=relu_passes_negatives), ops=["Relu", "Add"],
                       dtypes=["float32", "int32"])
    assert report.ops == {"Relu": {"float32": "fail", "int32": "fail"},
                          "Add": {"float32": "pass", "int32": "pass"}}
    by_dtype = {f.dtype: f for f in report.failures}
    assert by_dtype["float32"].example == "input 0: np.array(-1.0, dtype='float32')"
    assert by_dtype["int32"].example == "input 0: np.array(-1, dtype='int32')"
    assert by_dtype["float32"].reproduce == "dh conformance --backend planted --op Relu --dtype float32"
    assert "ACTUAL: array(-1.)" in by_dtype["float32"].message
    assert report.exit_code == 1
    assert report.runtime == {}


def test_small_relative_error_is_caught_within_the_dtype_tolerance():
    report = run_suite(Planted(Exp=exp_off_above_one), ops=["Exp"])
    # 1e-3 relative is inside float16's tolerance (1e-2) and outside float32/float64's.
    assert report.ops["Exp"] == {"float16": "pass", "float32": "fail", "float64": "fail"}
    (f32,) = [f for f in report.failures if f.dtype == "float32"]
    assert f32.example == "input 0: np.array(2.0, dtype='float32')"
    assert "Max relative difference among violations: 0.001" in f32.message


def test_manifest_tolerance_overrides_the_sample_tolerance():
    report = run_suite(Planted(Exp=exp_off_above_one), ops=["Exp"], dtypes=["float32"],
                       manifest={"tolerances": {("Exp", "float32"): (2e-3, 0.0)}})
    assert report.ops["Exp"] == {"float32": "pass"}


def test_backend_exceptions_are_failures_with_their_text():
    report = run_suite(Planted(Relu=raising), ops=["Relu"], dtypes=["float32"])
    assert report.ops["Relu"] == {"float32": "fail"}
    assert report.failures[0].message == "the backend raised in run: RuntimeError: device lost"


def test_unsupported_ops_and_dtypes_are_reported_as_unsupported():
    backend = Planted(drop=["Exp"], dtypes={"Relu": ("float32",)})
    report = run_suite(backend, ops=["Exp", "Relu"], dtypes=["float32", "float64"])
    assert report.ops == {"Exp": {"float32": "unsupported", "float64": "unsupported"},
                          "Relu": {"float32": "pass", "float64": "unsupported"}}
    assert report.summary == {"passed": 1, "failed": 0, "xfailed": 0, "unsupported": 3}
    assert report.exit_code == 0


def test_expected_failures_are_strict():
    manifest = {"xfail": {("Relu", "*"): "negative inputs pass through", ("Add", "float32"): "was broken"}}
    report = run_suite(Planted(Relu=relu_passes_negatives), ops=["Relu", "Add"], dtypes=["float32"],
                       manifest=manifest)
    assert report.ops == {"Relu": {"float32": "xfail"}, "Add": {"float32": "fail"}}
    (xpass,) = report.failures
    assert (xpass.op, xpass.dtype) == ("Add", "float32")
    assert xpass.message == "unexpected pass: the manifest expects a failure (was broken)"
    assert report.summary == {"passed": 0, "failed": 1, "xfailed": 1, "unsupported": 0}
    assert report.exit_code == 1


def uniform_of_another_generator(node, types):
    """A correct RandomUniform whose generator is not the reference's."""
    attrs = registry.get("RandomUniform").full_attrs(node)
    low, high = float(np.float32(attrs["low"])), float(np.float32(attrs["high"]))
    dtype = dt.from_onnx(attrs["dtype"])
    seed = attrs["seed"]
    state = np.random.RandomState(None if seed is None else abs(int(seed)))
    return lambda: np.minimum(low + (high - low) * state.random_sample(attrs["shape"]),
                              np.nextafter(np.float32(high), np.float32(low))).astype(dtype)


def uniform_ignoring_low_and_high(node, types):
    shape, code = node.attrs["shape"], node.attrs.get("dtype", 1)
    return lambda: np.random.default_rng(0).random(shape).astype(dt.from_onnx(code))


def normal_ignoring_the_seed(node, types):
    attrs = registry.get("RandomNormal").full_attrs(node)
    dtype = dt.from_onnx(attrs["dtype"])
    return lambda: (attrs["mean"] + attrs["scale"] * np.random.default_rng().standard_normal(attrs["shape"])
                    ).astype(dtype)


def test_random_ops_are_judged_by_distribution_and_seeded_reproducibility():
    """Another generator passes (values differ from the reference's); a wrong range and
    a seed that changes nothing fail, as does a wrong dtype."""
    ops, f32 = ["RandomUniform", "RandomNormal"], ["float32"]
    assert run_suite(Planted(RandomUniform=uniform_of_another_generator), ops=ops, dtypes=f32).exit_code == 0
    report = run_suite(Planted(RandomUniform=uniform_ignoring_low_and_high, RandomNormal=normal_ignoring_the_seed),
                       ops=ops, dtypes=f32)
    assert report.ops == {"RandomUniform": {"float32": "fail"}, "RandomNormal": {"float32": "fail"}}
    messages = {f.op: f.message for f in report.failures}
    assert messages["RandomUniform"].startswith("the random values fail their distribution check: ")
    assert messages["RandomNormal"] == "output 0: the same seed gave other values when run again"
    wrong_dtype = run_suite(Planted(RandomNormal=lambda node, types: lambda: np.zeros(node.attrs["shape"])),
                            ops=["RandomNormal"], dtypes=f32)
    assert "output 0 is float64" in wrong_dtype.failures[0].message


def test_thorough_mode_replays_from_its_seed():
    runs = [run_suite(Planted(Relu=relu_passes_negatives), quick=False, seed=1234, max_examples=30,
                      ops=["Relu"], dtypes=["float64"]) for _ in range(2)]
    assert runs[0].seed == 1234 and runs[0].mode == "thorough"
    assert runs[0].failures == runs[1].failures
    assert runs[0].failures[0].reproduce == ("dh conformance --backend planted --op Relu --dtype float64 "
                                             "--thorough --seed 1234 --max-examples 30")


def test_unknown_op_is_an_error():
    with pytest.raises(Exception, match="NoSuchOp"):
        run_suite(Planted(), ops=["NoSuchOp"])


# -- reports ---------------------------------------------------------------------------
def sample_report() -> Report:
    report = Report("planted", seconds=1.5)
    report.add("Relu", "float32", "fail", Failure("Relu", "float32", "input 0: np.array(-1.0, dtype='float32')",
                                                  "dh conformance --backend planted --op Relu --dtype float32",
                                                  "values differ"))
    report.add("Relu", "int8", "pass")
    report.add("Exp", "float32", "xfail")
    report.add("Exp", "float16", "unsupported")
    report.runtime.update(buffer_round_trip="pass", device_transfer="skip")
    report.runtime_messages.update(buffer_round_trip="96 arrays", device_transfer="one device")
    return report


def test_json_shape(tmp_path):
    report = sample_report()
    report.to_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["backend"] == "planted"
    assert data["summary"] == {"passed": 1, "failed": 1, "xfailed": 1, "unsupported": 1}
    assert data["ops"] == {"Exp": {"float32": "xfail", "float16": "unsupported"},
                           "Relu": {"float32": "fail", "int8": "pass"}}
    assert data["failures"] == [{"op": "Relu", "dtype": "float32",
                                 "example": "input 0: np.array(-1.0, dtype='float32')",
                                 "reproduce": "dh conformance --backend planted --op Relu --dtype float32",
                                 "message": "values differ"}]
    assert data["runtime"] == {"buffer_round_trip": "pass", "device_transfer": "skip"}


def test_markdown_matrix_and_failures(tmp_path):
    text = sample_report().to_markdown(tmp_path / "r.md")
    assert (tmp_path / "r.md").read_text() == text
    lines = text.splitlines()
    assert "| op | float16 | float32 | int8 |" in lines
    assert "| Exp | · | x |  |" in lines
    assert "| Relu |  | ✗ | ✓ |" in lines
    assert "### Relu float32" in lines
    assert "Reproduce: `dh conformance --backend planted --op Relu --dtype float32`" in lines
    assert "| device_transfer | skip | one device |" in lines


def test_text_report_is_a_rich_table():
    text = sample_report().to_text()
    assert "dh conformance: planted" in text
    assert "FAIL Relu float32" in text
    assert "reproduce: dh conformance --backend planted --op Relu --dtype float32" in text
    assert "1 passed, 1 failed, 1 expected failures, 1 unsupported" in text


def test_exit_code_counts_runtime_failures():
    report = Report("planted")
    report.add("Relu", "float32", "pass")
    assert report.exit_code == 0
    report.runtime["mlp"] = "fail"
    assert report.exit_code == 1


# -- tier 3: runtime -------------------------------------------------------------------
class DeviceBuffer:
    """Memory of a fake device: kernels must never see host arrays."""

    def __init__(self, data: np.ndarray, device: Device):
        self.data, self.device = data, device


def on_device(node, types):
    inner = reference_kernel(node, types)

    def kernel(*bufs):
        assert all(b is None or isinstance(b, DeviceBuffer) for b in bufs), f"{node.op} got host memory"
        out = inner(*[None if b is None else b.data for b in bufs])
        device = next(b.device for b in bufs if b is not None)
        if isinstance(out, tuple):
            return tuple(DeviceBuffer(o, device) for o in out)
        return DeviceBuffer(out, device)

    return kernel


class TwoDevices(KernelBackend):
    """A backend with its own memory on two devices and a direct transfer()."""

    name = "twodev"

    def __init__(self, noisy: bool = False):
        self.kernels = {op.name: on_device for op in registry.all_ops() if not op.domain}
        self.noisy = noisy

    def devices(self):
        return [Device("twodev:0"), Device("twodev:1")]

    def to_device(self, array, device):
        return DeviceBuffer(np.array(array, copy=True), device)

    def to_host(self, buffer):
        data = buffer.data.copy()
        if self.noisy and data.dtype == np.float32 and data.size:
            data.flat[-1] += np.float32(np.random.default_rng().uniform(1e-7, 1e-6))
        return data

    def transfer(self, buffer, device):
        return DeviceBuffer(buffer.data.copy(), device)


def test_runtime_checks_pass_on_a_two_device_backend():
    results = {r.name: r for r in runtime_checks.run_all(TwoDevices())}
    assert {n: r.status for n, r in results.items()} == {n: "pass" for n in runtime_checks.CHECKS}
    assert "through transfer()" in results["device_transfer"].message
    split = results["split_across_backends"].message
    assert " 0 copies" not in split and "copies" in split


def test_runtime_checks_catch_bad_buffers_and_nondeterminism():
    results = {r.name: r for r in runtime_checks.run_all(TwoDevices(noisy=True))}
    assert results["buffer_round_trip"].status == "fail"
    assert "values changed" in results["buffer_round_trip"].message
    assert results["repeated_runs"].status == "fail"
    assert results["mlp"].status == "pass"  # within tolerance, but not identical from run to run


def test_one_device_skips_transfers_and_a_backend_without_the_ops_skips_models():
    results = {r.name: r for r in runtime_checks.run_all(Planted(drop=[op.name for op in registry.all_ops()]))}
    assert results["device_transfer"].status == "skip"
    assert results["mlp"].status == "skip" and results["split_across_backends"].status == "skip"
    assert results["buffer_round_trip"].status == "pass"


def test_run_suite_includes_runtime_checks_without_an_op_filter():
    report = run_suite(Planted(), dtypes=["bool"], runtime=True)
    assert set(report.runtime) == set(runtime_checks.CHECKS)
    assert all(status in ("pass", "skip") for status in report.runtime.values()), report.runtime_messages


# -- pytest plugin -----------------------------------------------------------------------
def test_manifest_xfails_become_strict_xfail_marks():
    state = Conformance(Planted(), Mode(), {"xfail": {("Relu", "*"): "known"}})
    params = {p.id: p for p in _case_params(state)}
    (mark,) = params["Relu-float32"].marks
    assert mark.name == "xfail" and mark.kwargs == {"strict": True, "reason": "manifest: known"}
    assert not params["Add-float32"].marks


def _pytest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "dh_core.conformance", "-p",
                           "no:cacheprovider", "-q", "-rs", *args], check=False, capture_output=True, text=True,
                          timeout=600)


def test_pytest_without_a_backend_skips_with_the_reason():
    done = _pytest()
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 skipped" in done.stdout
    assert "need a backend: pytest --pyargs dh_core.conformance --dh-backend NAME" in done.stdout


def test_pytest_runs_the_suite_on_cpu():
    done = _pytest("--dh-backend", "cpu", "-k", "(Relu-float32 and not Leaky and not PRelu and not Thresholded) or buffer_round_trip or device")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed, 1 skipped" in done.stdout
    assert "one device (cpu): no transfers to check" in done.stdout


def test_the_plugin_imports_no_hypothesis():
    code = ("import sys, dh_core.conformance.pytest_plugin; "
            "assert 'hypothesis' not in sys.modules, 'hypothesis was imported'")
    done = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
