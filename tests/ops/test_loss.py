"""Loss functions: reference vs onnx.reference, inference, decompositions vs the reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dh_core.conformance.samples import all_samples
from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType
from dh_core.ops import registry
from dh_core.ops.base import InferContext

from .oracle import assert_all_match, decomposed, infer, infer_compatible, onnx_run, ours

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SAMPLES = all_samples()
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPS = ("NegativeLogLikelihoodLoss", "SoftmaxCrossEntropyLoss")
CASES = [(op, d) for op in OPS for d in registry.get(op).dtypes("T")]


def oracle(op: str, inputs, attrs, n_outputs: int):
    """onnx.reference's outputs, computed in float64 and rounded to the input dtype
    (it takes log(softmax(x)), which underflows to -inf in float16).

    Without weights onnx.reference averages over ignored targets too when ignore_index
    is -1; the spec (and ONNX's generator of the node cases' expected outputs) divides
    by the count of targets not ignored. Unit weights give the spec's loss, so the
    oracle is given those."""
    x, target, *weight = inputs
    if not weight and "ignore_index" in attrs:
        weight = [np.ones(x.shape[1], x.dtype)]
    wide = [x.astype(np.float64), target, *(w.astype(np.float64) for w in weight)]
    return [y.astype(x.dtype) for y in onnx_run(op, wide, attrs, n_outputs)]


def _n_outputs(s) -> int:
    return s.n_outputs or 1


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    n = _n_outputs(s)
    assert_all_match(ours(op, s.inputs, s.attrs, n), oracle(op, s.inputs, s.attrs, n),
                     SAMPLES[op].tolerance_for(dtype))


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_infer_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    n = _n_outputs(s)
    got = ours(op, s.inputs, s.attrs, n)
    assert infer(op, s.inputs, s.attrs, n) == [TensorType(y.dtype.name, y.shape) for y in got]


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_decomposition_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    n = _n_outputs(s)
    assert_all_match(decomposed(op, s.inputs, s.attrs, n), ours(op, s.inputs, s.attrs, n),
                     SAMPLES[op].tolerance_for(dtype))


def test_samples_cover_declared_dtypes():
    for op in OPS:
        assert set(SAMPLES[op].dtypes) == set(registry.get(op).dtypes("T")), op


def test_ignored_targets_add_nothing_even_over_nan():
    x = np.array([[np.nan, -1.0], [-2.0, -3.0]], np.float32)
    target = np.array([-1, 1], np.int64)
    attrs = {"ignore_index": -1}
    (none,) = ours("NegativeLogLikelihoodLoss", [x, target], {**attrs, "reduction": "none"})
    np.testing.assert_array_equal(none, [0.0, 3.0])
    (mean,) = ours("NegativeLogLikelihoodLoss", [x, target], attrs)
    assert mean == np.float32(3.0)  # divided by the one target not ignored
    (weighted,) = ours("NegativeLogLikelihoodLoss", [x, target, np.array([5, 0.5], np.float32)], attrs)
    assert weighted == np.float32(3.0)
    assert decomposed("NegativeLogLikelihoodLoss", [x, target], attrs)[0] == mean


def test_infer_with_unknown_shapes():
    types = [TensorType("float32", ("N", 3, None)), None]
    opdef = registry.get("SoftmaxCrossEntropyLoss")
    node = Node("SoftmaxCrossEntropyLoss", ["x", "t"], ["y", "p"], {"reduction": "none"})
    loss, log_prob = opdef.infer(InferContext(node, types, opdef.full_attrs(node), [None, None]))
    assert loss == TensorType("float32", ("N", None)) and log_prob == types[0]
    node = Node("SoftmaxCrossEntropyLoss", ["x", "t"], ["y"], {})
    assert opdef.infer(InferContext(node, [None, None], opdef.full_attrs(node), [None, None])) == [None]


def test_bad_targets_and_reductions_are_shape_errors():
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(ShapeError, match="outside"):
        ours("NegativeLogLikelihoodLoss", [x, np.array([0, 3], np.int64)])
    with pytest.raises(ShapeError, match="does not fit"):
        ours("NegativeLogLikelihoodLoss", [x, np.array([0, 1, 2], np.int64)])
    with pytest.raises(ShapeError, match="reduction"):
        infer("SoftmaxCrossEntropyLoss", [x, np.array([0, 1], np.int64)], {"reduction": "max"})


def test_log_prob_output_infers_with_the_scores_shape():
    x = np.zeros((2, 3, 4), np.float16)
    t = np.zeros((2, 4), np.int32)
    loss, log_prob = infer("SoftmaxCrossEntropyLoss", [x, t], {"reduction": "sum"}, n_outputs=2)
    assert loss == TensorType("float16", ()) and infer_compatible(log_prob, x)
