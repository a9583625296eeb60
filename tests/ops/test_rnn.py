"""Recurrent ops (RNN, GRU, LSTM): our references against onnx.reference for the features
it implements, against ONNX Runtime for the ones it ignores (activations, clip,
sequence_lens, input_forget), and type inference against the actual outputs."""
from __future__ import annotations

import numpy as np
import pytest
from dh_core.conformance.samples import Sample, all_samples
from dh_core.ops import registry
from dh_core.ops.base import InferContext
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType

from .oracle import assert_all_match, draw_sample, infer, onnx_run, ours

OPS = ("RNN", "GRU", "LSTM")
SAMPLES = all_samples()
CASES = [(op, dtype) for op in OPS for dtype in SAMPLES[op].dtypes]
EXAMPLES = settings(max_examples=30, deadline=None)
# ONNX's defaults for the activations' alpha and beta: those of the ONNX operators
# of the same name (Affine and ScaledTanh: identity scaling).
ONNX_DEFAULTS = {"affine": (1.0, 0.0), "leakyrelu": (0.01, None), "thresholdedrelu": (1.0, None),
                 "scaledtanh": (1.0, 1.0), "hardsigmoid": (0.2, 0.5), "elu": (1.0, None)}


def without_ignored_features(sample: Sample) -> Sample:
    """The sample less what onnx.reference ignores: activations, clip, sequence_lens,
    input_forget (it always runs the default activations over the whole sequence)."""
    ignored = ("activations", "activation_alpha", "activation_beta", "clip", "input_forget")
    attrs = {k: v for k, v in sample.attrs.items() if k not in ignored}
    inputs = list(sample.inputs)
    if len(inputs) > 4:
        inputs[4] = None
    while inputs[-1] is None:
        inputs.pop()
    return Sample(inputs, attrs, sample.n_outputs)


@pytest.mark.parametrize(("op", "dtype"), CASES)
@EXAMPLES
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    sample = without_ignored_features(draw_sample(data, op, dtype))
    want = onnx_run(op, sample.inputs, sample.attrs, sample.n_outputs)
    got = ours(op, sample.inputs, sample.attrs, sample.n_outputs)
    assert_all_match(got, want, SAMPLES[op].tolerance_for(dtype))


def onnxruntime_run(op: str, sample: Sample) -> list[np.ndarray]:
    """Run a sample on ONNX Runtime's CPU kernels, which take layout 0 only: a
    layout-1 sample runs with its batch and time axes swapped in and out."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper

    attrs = dict(sample.attrs)
    inputs = list(sample.inputs)
    batch_first = attrs.pop("layout", 0) == 1
    if batch_first:
        for i in (0, 5, 6):
            if i < len(inputs) and inputs[i] is not None:
                inputs[i] = np.swapaxes(inputs[i], 0, 1).copy()
    attrs.update(explicit_alpha_beta(attrs))
    attrs.setdefault("hidden_size", inputs[2].shape[-1])  # ONNX Runtime requires it
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outs = [f"y{i}" for i in range(sample.n_outputs)]
    node = helper.make_node(op, names, outs, **{k: v for k, v in attrs.items() if v != []})
    elem = helper.np_dtype_to_tensor_dtype(inputs[0].dtype)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
         for n, x in zip(names, inputs) if x is not None],
        [helper.make_tensor_value_info(o, elem, None) for o in outs])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 22)], ir_version=10)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    results = session.run(None, {n: x for n, x in zip(names, inputs) if x is not None})
    if batch_first:
        results = [np.transpose(r, (2, 0, 1, 3)) if r.ndim == 4 else np.swapaxes(r, 0, 1) for r in results]
    return results


def explicit_alpha_beta(attrs: dict) -> dict:
    """activation_alpha/beta with ONNX's defaults written out for every activation that
    takes them (ONNX Runtime defaults some of them to 0 instead)."""
    names = attrs.get("activations")
    if not names:
        return {}
    alphas, betas = iter(attrs.get("activation_alpha", [])), iter(attrs.get("activation_beta", []))
    out: dict[str, list[float]] = {"activation_alpha": [], "activation_beta": []}
    for name in names:
        alpha, beta = ONNX_DEFAULTS.get(name.lower(), (None, None))
        if alpha is not None:
            out["activation_alpha"].append(next(alphas, alpha))
        if beta is not None:
            out["activation_beta"].append(next(betas, beta))
    return out


@pytest.mark.parametrize("op", OPS)
@EXAMPLES
@given(data=st.data())
def test_reference_matches_onnxruntime(op, data):
    sample = draw_sample(data, op, "float32")
    want = onnxruntime_run(op, sample)
    # ONNX Runtime's Softplus is log(1 + exp(x)), which overflows where ours does not.
    assume(all(np.isfinite(w).all() for w in want))
    got = ours(op, sample.inputs, sample.attrs, sample.n_outputs)
    assert_all_match(got, want, SAMPLES[op].tolerance_for("float32"))


@pytest.mark.parametrize(("op", "dtype"), CASES)
@settings(max_examples=15, deadline=None)
@given(data=st.data())
def test_infer_matches_outputs(op, dtype, data):
    sample = draw_sample(data, op, dtype)
    got = ours(op, sample.inputs, sample.attrs, sample.n_outputs)
    types = infer(op, sample.inputs, sample.attrs, sample.n_outputs)
    assert types == [TensorType(g.dtype.name, g.shape) for g in got]


def test_infer_keeps_symbolic_dims():
    node = Node("LSTM", ["x", "w", "r"], ["y", "yh", "yc"], {"direction": "bidirectional", "layout": 1})
    opdef = registry.get("LSTM")
    types = [TensorType("float32", ("N", "T", 4)), TensorType("float32", (2, 12, 4)),
             TensorType("float32", (2, 12, 3))]
    out = opdef.infer(InferContext(node, types, opdef.full_attrs(node), [None] * 3))
    assert out == [TensorType("float32", ("N", "T", 2, 3)), TensorType("float32", ("N", 2, 3)),
                   TensorType("float32", ("N", 2, 3))]
    unknown = opdef.infer(InferContext(node, [TensorType("float32")] * 3, opdef.full_attrs(node), [None] * 3))
    assert [t.shape for t in unknown] == [(None, None, 2, None), (None, 2, None), (None, 2, None)]


def _rnn_inputs(hidden=2, seq=3, batch=2, size=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.uniform(-1, 1, s).astype(np.float32)
            for s in ((seq, batch, size), (1, hidden, size), (1, hidden, hidden))]


@pytest.mark.parametrize(("activation", "alpha", "beta"), [
    ("Affine", [1.0], [0.0]), ("ThresholdedRelu", [1.0], None), ("LeakyRelu", [0.01], None),
    ("HardSigmoid", [0.2], [0.5]), ("Elu", [1.0], None), ("ScaledTanh", [1.0], [1.0])])
def test_activation_defaults_are_the_onnx_operators(activation, alpha, beta):
    inputs = _rnn_inputs()
    implicit = ours("RNN", inputs, {"activations": [activation]}, 2)
    explicit = {"activations": [activation], "activation_alpha": alpha}
    if beta is not None:
        explicit["activation_beta"] = beta
    for a, b in zip(implicit, ours("RNN", inputs, explicit, 2)):
        np.testing.assert_array_equal(a, b)


def test_alphas_are_consumed_only_by_activations_that_take_them():
    inputs = _rnn_inputs(seed=1)
    x, w, r = inputs
    attrs = {"activations": ["Tanh", "LeakyRelu"], "direction": "bidirectional", "activation_alpha": [0.5]}
    inputs = [x, np.concatenate([w, w]), np.concatenate([r, r])]
    y, _ = ours("RNN", inputs, attrs, 2)
    (back, _) = ours("RNN", [x, w, r], {"activations": ["LeakyRelu"], "activation_alpha": [0.5],
                                        "direction": "reverse"}, 2)
    np.testing.assert_allclose(y[:, 1:], back, rtol=1e-6)


def test_sequence_lens_zero_fill_and_final_state():
    x, w, r = _rnn_inputs(seq=4, batch=2, seed=2)
    lens = np.array([4, 2], np.int32)
    y, yh = ours("GRU", [x, np.tile(w, (1, 3, 1)), np.tile(r, (1, 3, 1)), None, lens], {}, 2)
    assert np.all(y[2:, :, 1] == 0) and np.any(y[2:, :, 0] != 0)
    np.testing.assert_array_equal(yh[0, 1], y[1, 0, 1])
    np.testing.assert_array_equal(yh[0, 0], y[3, 0, 0])
    short, _ = ours("GRU", [x[:2, 1:], np.tile(w, (1, 3, 1)), np.tile(r, (1, 3, 1))], {}, 2)
    np.testing.assert_allclose(y[:2, :, 1:], short, rtol=1e-6)


@pytest.mark.parametrize(("attrs", "message"), [
    ({"direction": "sideways"}, "direction"),
    ({"activations": ["Swish"]}, "activation"),
    ({"hidden_size": 7}, "hidden_size"),
])
def test_bad_attributes_raise(attrs, message):
    with pytest.raises(ShapeError, match=message):
        ours("RNN", _rnn_inputs(), attrs, 2)
