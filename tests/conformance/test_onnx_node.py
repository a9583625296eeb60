"""Tier 2: ONNX's own node test cases run through a backend, judged by onnx's rules."""
from __future__ import annotations

import json

from dh_core.conformance import onnx_node
from dh_core.conformance.runner import run_suite

from .test_suite import Planted, relu_passes_negatives

RELU_CASES = {"test_relu", "test_relu_expanded_ver18"}


def relu_report(backend, manifest=None):
    return run_suite(backend, ops=["Relu"], dtypes=["float32"], runtime=False, onnx_node=True,
                     manifest=manifest or {"tolerances": {}, "xfail": {}})


def test_cases_come_from_the_installed_onnx():
    names = {c.name for c in onnx_node.node_cases()}
    assert len(names) > 1000 and {"test_abs", "test_conv_with_strides_padding"} <= names
    relu = {c.name for c in onnx_node.selected_cases(["Relu"])}
    assert "test_relu" in relu and "test_abs" not in relu


def test_correct_backend_passes_and_wrong_kernel_fails_the_onnx_case():
    good = relu_report(Planted())
    assert good.onnx_node["test_relu"] == "pass"
    bad = relu_report(Planted(Relu=relu_passes_negatives))
    assert bad.onnx_node["test_relu"] == "fail"
    assert "Mismatched elements" in bad.onnx_node_messages["test_relu"]
    assert bad.exit_code == 1


def test_missing_op_is_unsupported_not_failed():
    report = relu_report(Planted(drop=["Relu", "Max"]))
    assert report.onnx_node["test_relu"] == "unsupported"
    assert "not supported by any backend tried: planted" in report.onnx_node_messages["test_relu"]
    assert report.exit_code == 0


def test_expected_failures_are_strict():
    manifest = {"tolerances": {}, "xfail": {}, "onnx_xfail": {r"^test_relu$": "planted bug"}}
    failing = relu_report(Planted(Relu=relu_passes_negatives), manifest)
    assert failing.onnx_node["test_relu"] == "xfail"
    passing = relu_report(Planted(), manifest)
    assert passing.onnx_node["test_relu"] == "fail"
    assert "unexpected pass" in passing.onnx_node_messages["test_relu"]


def test_json_counts_the_onnx_node_cases(tmp_path):
    report = relu_report(Planted(Relu=relu_passes_negatives))
    data = json.loads(report.to_json(tmp_path / "r.json"))
    node = data["onnx_node"]
    assert set(node["summary"]) == {"passed", "failed", "xfailed", "unsupported"}
    assert node["summary"]["failed"] == sum(1 for s in node["cases"].values() if s == "fail") >= 1
    assert {f["case"] for f in node["failures"]} >= {"test_relu"}
    assert "ONNX node test cases" in report.to_markdown()
