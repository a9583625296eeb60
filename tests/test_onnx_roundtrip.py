"""Import -> export round trip of every model test shipped in the onnx package.

Each case's model is imported, exported (default opset), checked with the ONNX checker
(full check) and run in onnxruntime; its outputs must equal the case's expected outputs
within the case's tolerance (onnx's runner: rtol 1e-3, atol 1e-7 unless the case's
data.json says otherwise). The real models (``real/``, stored in ``light/``) take
minutes under onnxruntime's reference checks and wait for ``DH_ONNX_MODEL_TESTS=1``,
as in tests/test_onnx_backend.py.

Cases dh cannot import (sequences, strings, training-only ops) are skipped with the
importer's reason; cases onnxruntime cannot run in their original form are skipped
with onnxruntime's reason.
"""
from __future__ import annotations

import os

import numpy as np
import onnx
import pytest

from dh_core.errors import ModelLoadError
from dh_core.onnx_io import export_model, import_model
from tests.onnx_model_cases import collect_cases, data_sets

ort = pytest.importorskip("onnxruntime")

MODEL_TESTS = os.environ.get("DH_ONNX_MODEL_TESTS") == "1"
CASES = collect_cases()


def ort_session(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _params():
    for case in CASES:
        marks = [pytest.mark.skipif(not MODEL_TESTS, reason="real models wait for DH_ONNX_MODEL_TESTS=1")] \
            if case.light else []
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_round_trip_matches_the_expected_outputs(case):
    model = onnx.load(case.model_path)
    try:
        graph = import_model(case.model_path)
    except ModelLoadError as exc:
        pytest.skip(f"dh does not import this model: {exc}")
    exported = export_model(graph)
    onnx.checker.check_model(exported, full_check=True)
    try:
        session = ort_session(exported)
    except Exception as exc:
        try:
            ort_session(model)
        except Exception as original:
            pytest.skip(f"onnxruntime cannot run the original model either: {str(original).splitlines()[0]}")
        raise AssertionError(f"onnxruntime rejects the exported model but runs the original: {exc}") from None
    for inputs, expected in data_sets(case, model):
        got = session.run(None, inputs)
        assert len(got) == len(expected)
        for out, ref in zip(got, expected):
            assert out.dtype == ref.dtype and out.shape == ref.shape
            if out.dtype == object:  # text: exact
                np.testing.assert_array_equal(out, ref)
            else:
                np.testing.assert_allclose(out, ref, rtol=case.rtol, atol=case.atol)


# -- what older opsets lack ----------------------------------------------------------
def clip_after(op: str, domain: str = "") -> onnx.ModelProto:
    """An opset-6 Clip with min/max attributes on the output of ``op``, whose dtype the
    model does not declare: the importer reads the bounds through a CastLike."""
    from onnx import TensorProto, helper

    nodes = [helper.make_node(op, ["x"], ["h"], name="pre", domain=domain or None),
             helper.make_node("Clip", ["h"], ["y"], name="clip", min=-0.5, max=0.5)]
    graph = helper.make_graph(nodes, "clip6", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3, 4])])
    opsets = [helper.make_opsetid("", 6)] + ([helper.make_opsetid(domain, 1)] if domain else [])
    return helper.make_model(graph, opset_imports=opsets)


def test_castlike_of_an_old_clip_becomes_a_cast_before_opset_15():
    model = clip_after("Neg")
    graph = import_model(model)
    assert "CastLike" in [n.op for n in graph.nodes]
    exported = export_model(graph, opset=13)
    onnx.checker.check_model(exported, full_check=True)
    ops = [n.op_type for n in exported.graph.node]
    assert "CastLike" not in ops and ops.count("Cast") == 2
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    (got,) = ort_session(exported).run(None, {"x": x})
    np.testing.assert_array_equal(got, np.clip(-x, -0.5, 0.5))


def test_castlike_of_unknown_dtype_raises_the_default_opset_or_names_the_node():
    from dh_core.errors import GraphError

    graph = import_model(clip_after("Mystery", domain="com.example"))
    exported = export_model(graph)
    assert exported.opset_import[0].version == 15
    assert "CastLike" in [n.op_type for n in exported.graph.node]
    with pytest.raises(GraphError, match="node 'clip_min': cannot export CastLike to opset 13: .*'h' is unknown"):
        export_model(graph, opset=13)


def test_split_into_equal_parts_exports_before_opset_18():
    from onnx import TensorProto, helper

    node = helper.make_node("Split", ["x"], ["a", "b"], name="split", axis=1)
    graph = helper.make_graph([node], "split", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 2]) for n in "ab"])
    g = import_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    assert g.nodes[0].attrs["num_outputs"] == 2
    exported = export_model(g, opset=13)
    onnx.checker.check_model(exported, full_check=True)
    assert [a.name for a in exported.graph.node[0].attribute] == ["axis"]
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    a, b = ort_session(exported).run(None, {"x": x})
    np.testing.assert_array_equal(a, x[:, :2])
    np.testing.assert_array_equal(b, x[:, 2:])
