"""Optimizer steps of domain ai.onnx.preview.training: references against onnx.reference,
inference against the outputs, and the domain kept through import, export and a session."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper

from dh_core.conformance.samples import all_samples
from dh_core.errors import ShapeError
from dh_core.ir import TensorType
from dh_core.onnx_io import export_model, import_model
from dh_core.ops import registry
from dh_core.session import Session

from .oracle import assert_all_match, infer, onnx_run, ours

DOMAIN = "ai.onnx.preview.training"
OPS = ("Adagrad", "Adam", "Momentum")
SAMPLES = all_samples()
CASES = [(op, dtype) for op in OPS for dtype in SAMPLES[op].dtypes]
EXAMPLES = settings(max_examples=30, deadline=None)
ORACLE_TOLERANCE = (1e-6, 1e-6)
"""onnx.reference evaluates attribute terms such as 1 - alpha in float32, also for float64
tensors (1e-8 off); ours are exact in float64."""


def test_every_op_is_registered_in_its_domain_with_samples():
    for op in OPS:
        opdef = registry.get(op, DOMAIN)
        assert opdef.domain == DOMAIN and not opdef.composite
        assert registry.find(op) is None, op  # not an ai.onnx op
        assert set(SAMPLES[op].dtypes) == set(opdef.dtypes("T3")), op


def oracle(op: str, inputs, attrs) -> list[np.ndarray]:
    """onnx.reference's outputs, run one optimized tensor at a time and cast to the
    tensors' dtype: with several tensors its Adam rounds every output to float32 (float64
    ones too), and with one tensor its Adam and Momentum return float64 where numpy
    promotes. The spec updates each tensor independently, so one at a time is the same."""
    groups = registry.get(op, DOMAIN).groups
    r, t, *tensors = inputs
    n = len(tensors) // groups
    per_tensor = [onnx_run(op, [r, t, *tensors[i::n]], attrs, groups - 1, domain=DOMAIN) for i in range(n)]
    return [per_tensor[i][g].astype(tensors[i].dtype) for g in range(groups - 1) for i in range(n)]


@pytest.mark.parametrize(("op", "dtype"), CASES)
@EXAMPLES
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    got = ours(op, s.inputs, s.attrs, s.n_outputs, domain=DOMAIN)
    want = oracle(op, s.inputs, s.attrs)
    assert_all_match(got, want, ORACLE_TOLERANCE)


@pytest.mark.parametrize(("op", "dtype"), CASES)
@EXAMPLES
@given(data=st.data())
def test_infer_matches_outputs(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    got = ours(op, s.inputs, s.attrs, s.n_outputs, domain=DOMAIN)
    assert infer(op, s.inputs, s.attrs, s.n_outputs, domain=DOMAIN) == [
        TensorType(y.dtype.name, y.shape) for y in got]


def test_first_adam_and_momentum_steps_use_the_plain_rate_and_gradient():
    r, t0 = np.array(0.5, np.float32), np.array(0, np.int64)
    x, g, v = (np.array([1.0], np.float32), np.array([2.0], np.float32), np.array([4.0], np.float32))
    attrs = {"alpha": 0.5, "beta": 0.25, "mode": "standard", "norm_coefficient": 0.0}
    x_new, v_new = ours("Momentum", [r, t0, x, g, v], attrs, 2, domain=DOMAIN)
    assert v_new[0] == 0.5 * 4 + 2 and x_new[0] == 1 - 0.5 * 4  # beta is 1 on the first step
    x_new, v_new = ours("Momentum", [r, np.array(3, np.int64), x, g, v], attrs, 2, domain=DOMAIN)
    assert v_new[0] == 0.5 * 4 + 0.25 * 2
    h = np.array([0.0], np.float32)
    x_new, v_new, h_new = ours("Adam", [r, t0, x, g, v, h], {"epsilon": 0.0}, 3, domain=DOMAIN)
    np.testing.assert_allclose(x_new, 1 - 0.5 * v_new / np.sqrt(h_new), rtol=1e-6)


def test_wrong_tensor_counts_and_modes_are_shape_errors():
    r, t, x = np.array(0.1, np.float32), np.array(1, np.int64), np.ones(2, np.float32)
    with pytest.raises(ShapeError, match="groups of n"):
        ours("Adam", [r, t, x, x, x], {}, 1, domain=DOMAIN)
    with pytest.raises(ShapeError, match="mode"):
        infer("Momentum", [r, t, x, x, x], {"alpha": 0.9, "beta": 0.1, "mode": "heavy", "norm_coefficient": 0.0},
              2, domain=DOMAIN)


def _adagrad_model() -> onnx.ModelProto:
    node = helper.make_node("Adagrad", ["R", "T", "X", "G", "H"], ["X_new", "H_new"], domain=DOMAIN,
                            decay_factor=0.1, epsilon=1e-6, norm_coefficient=0.01)
    f32 = onnx.TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("R", f32, []), helper.make_tensor_value_info("T", onnx.TensorProto.INT64, []),
              *(helper.make_tensor_value_info(n, f32, [3]) for n in "XGH")]
    outputs = [helper.make_tensor_value_info(n, f32, [3]) for n in ("X_new", "H_new")]
    graph = helper.make_graph([node], "adagrad", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 28), helper.make_opsetid(DOMAIN, 1)])


def test_import_keeps_the_domain_and_a_session_runs_it():
    graph = import_model(_adagrad_model())
    assert [(n.domain, n.op) for n in graph.nodes] == [(DOMAIN, "Adagrad")]
    feeds = {"R": np.array(0.1, np.float32), "T": np.array(2, np.int64), "X": np.array([1, 2, 3], np.float32),
             "G": np.array([0.5, -1, 0], np.float32), "H": np.array([1, 1, 1], np.float32)}
    got = Session(graph, backends=["cpu"], fallback="error").run(feeds)
    want = onnx_run("Adagrad", list(feeds.values()), {"decay_factor": 0.1, "epsilon": 1e-6, "norm_coefficient": 0.01},
                    2, domain=DOMAIN)
    got = list(got.values()) if isinstance(got, dict) else got
    assert_all_match(got, want, (1e-6, 1e-6))
    exported = export_model(graph)
    assert {(o.domain, o.version) for o in exported.opset_import} >= {(DOMAIN, 1)}
    assert [n.domain for n in exported.graph.node] == [DOMAIN]
