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

import glob
import json
import os
from dataclasses import dataclass

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from dh_core.errors import ModelLoadError
from dh_core.onnx_io import export_model, import_model

ort = pytest.importorskip("onnxruntime")

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
MODEL_TESTS = os.environ.get("DH_ONNX_MODEL_TESTS") == "1"
KINDS = ("simple", "pytorch-converted", "pytorch-operator")


@dataclass
class Case:
    """One model test: the model file, its data sets, its tolerance."""

    name: str
    model_path: str
    data_dirs: list[str]
    rtol: float = 1e-3
    atol: float = 1e-7
    light: bool = False


def _tolerance(case_dir: str) -> dict:
    path = os.path.join(case_dir, "data.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    return {k: data[k] for k in ("rtol", "atol") if k in data}


def collect_cases() -> list[Case]:
    """The model tests of the installed onnx package, as onnx's loader finds them."""
    cases = []
    for kind in KINDS:
        for case_dir in sorted(glob.glob(os.path.join(DATA, kind, "test_*"))):
            model = os.path.join(case_dir, "model.onnx")
            if os.path.exists(model):
                data = sorted(glob.glob(os.path.join(case_dir, "test_data_set_*")))
                cases.append(Case(f"{kind}/{os.path.basename(case_dir)}", model, data, **_tolerance(case_dir)))
    for case_dir in sorted(glob.glob(os.path.join(DATA, "real", "test_*"))):
        with open(os.path.join(case_dir, "data.json")) as f:
            url = json.load(f)["url"]
        model = os.path.join(os.path.dirname(onnx.__file__), "..", url)
        cases.append(Case(f"real/{os.path.basename(case_dir)}", os.path.normpath(model), [],
                          **_tolerance(case_dir), light=True))
    return cases


CASES = collect_cases()


def _read_tensor(path: str) -> np.ndarray:
    tensor = onnx.TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


def data_sets(case: Case, model: onnx.ModelProto) -> list[tuple[dict[str, np.ndarray], list[np.ndarray]]]:
    """(inputs by name, expected outputs) of every data set of the case."""
    inits = {t.name for t in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in inits]
    if case.light:
        # onnx's runner feeds a light model arange(n)/n in the input's shape and
        # compares with the outputs shipped beside the model
        inputs = {}
        for v in model.graph.input:
            if v.name not in inits:
                shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in v.type.tensor_type.shape.dim)
                n = int(np.prod(shape))
                inputs[v.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
        prefix = os.path.splitext(case.model_path)[0]
        expected = [_read_tensor(f"{prefix}_output_{i}.pb") for i in range(len(model.graph.output))]
        return [(inputs, expected)]
    sets = []
    for data_dir in case.data_dirs:
        count = len(glob.glob(os.path.join(data_dir, "input_*.pb")))
        inputs = {names[i]: _read_tensor(os.path.join(data_dir, f"input_{i}.pb")) for i in range(count)}
        outs = len(glob.glob(os.path.join(data_dir, "output_*.pb")))
        expected = [_read_tensor(os.path.join(data_dir, f"output_{i}.pb")) for i in range(outs)]
        sets.append((inputs, expected))
    return sets


def ort_session(model: onnx.ModelProto):
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _params():
    for case in CASES:
        marks = [pytest.mark.skipif(not MODEL_TESTS, reason="real models wait for DH_ONNX_MODEL_TESTS=1")] \
            if case.light else []
        yield pytest.param(case, id=case.name, marks=marks)


@pytest.mark.parametrize("case", list(_params()))
def test_round_trip_matches_the_expected_outputs(case: Case):
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
