"""Signal ops (windows, DFT, STFT, MelWeightMatrix): reference vs onnx.reference,
inference, and the windows' decompositions vs the reference."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dh_core import dtypes as dt
from dh_core.conformance.samples import all_samples
from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType
from dh_core.ops import registry
from dh_core.ops.base import InferContext

from .oracle import assert_all_match, decomposed, infer, onnx_run, ours

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SAMPLES = all_samples()
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WINDOWS = ("HannWindow", "HammingWindow", "BlackmanWindow")
OPS = WINDOWS + ("DFT", "STFT", "MelWeightMatrix")
CASES = [(op, d) for op in OPS for d in SAMPLES[op].dtypes]
CONSTANT_INPUTS = {"DFT": (1, 2), "STFT": (1, 3), "MelWeightMatrix": (0, 1, 2, 3, 4)}
"""Inputs that are initializers in practice, so inference sees their values."""


def _window_oracle(op: str, size, attrs) -> np.ndarray:
    """onnx.reference computes windows in the output dtype (integer arange included) where
    ONNX's function body computes in float32 and casts: integer outputs are its float64
    window truncated, except next to 1, where float32 and float64 rounding may differ."""
    dtype = dt.from_onnx(attrs.get("output_datatype", 1))
    if np.dtype(dtype).kind == "f":
        return onnx_run(op, [size], attrs)[0]
    (exact,) = onnx_run(op, [size], {**attrs, "output_datatype": dt.onnx_code("float64")})
    return exact.astype(dtype)


def _near_one(op: str, size, attrs) -> np.ndarray:
    (exact,) = onnx_run(op, [size], {**attrs, "output_datatype": dt.onnx_code("float64")})
    return np.abs(exact - 1) < 1e-6


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    tolerance = SAMPLES[op].tolerance_for(dtype)
    (got,) = ours(op, s.inputs, s.attrs)
    if op in WINDOWS:
        want = _window_oracle(op, s.inputs[0], s.attrs)
        if got.dtype.kind in "iu":
            keep = ~_near_one(op, s.inputs[0], s.attrs)
            assert got.dtype == want.dtype and got.shape == want.shape
            np.testing.assert_array_equal(got[keep], want[keep])
            return
        assert_all_match([got], [want], tolerance)
        return
    assert_all_match([got], onnx_run(op, s.inputs, s.attrs), tolerance)


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_infer_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    (got,) = ours(op, s.inputs, s.attrs)
    constants = CONSTANT_INPUTS.get(op, (0,))
    assert infer(op, s.inputs, s.attrs, constant_inputs=constants) == [TensorType(got.dtype.name, got.shape)]


@pytest.mark.parametrize("op,dtype", [(op, d) for op, d in CASES if op in WINDOWS])
@SETTINGS
@given(data=st.data())
def test_decomposition_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    assert_all_match(decomposed(op, s.inputs, s.attrs), ours(op, s.inputs, s.attrs), (0, 0))


def _infer_types(op, types, attrs=None, constants=None):
    opdef = registry.get(op)
    node = Node(op, [f"x{i}" for i in range(len(types))], ["y"], dict(attrs or {}))
    return opdef.infer(InferContext(node, types, opdef.full_attrs(node), constants or [None] * len(types)))


def test_inference_leaves_unknown_values_unknown():
    assert _infer_types("HannWindow", [TensorType("int64", ())], {"output_datatype": 11}) == [
        TensorType("float64", (None,))]
    x = TensorType("float32", ("B", 8, 1))
    assert _infer_types("DFT", [x, TensorType("int64", ())]) == [TensorType("float32", ("B", None, 2))]
    assert _infer_types("DFT", [x], {"onesided": 1}) == [TensorType("float32", ("B", 5, 2))]
    assert _infer_types("DFT", [x, TensorType("int64", ()), TensorType("int64", ())]) == [
        TensorType("float32", None)]
    assert _infer_types("STFT", [x, TensorType("int64", ())]) == [TensorType("float32", ("B", None, 5, 2))]
    with pytest.raises(ShapeError, match="output_datatype"):
        _infer_types("BlackmanWindow", [TensorType("int64", ())], {"output_datatype": 9})


def test_dft_rejects_the_complex_axis():
    x = np.zeros((2, 3, 2), np.float32)
    with pytest.raises(ShapeError, match="axis"):
        ours("DFT", [x, None, np.array(-1, np.int64)])
    with pytest.raises(ShapeError, match="last dimension"):
        ours("DFT", [np.zeros((2, 3), np.float32)])


def test_dft_inverse_undoes_the_forward_transform():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 8, 1))
    (spectrum,) = ours("DFT", [x, None, np.array(1, np.int64)])
    (back,) = ours("DFT", [spectrum, None, np.array(1, np.int64)], {"inverse": 1})
    np.testing.assert_allclose(back, np.concatenate([x, np.zeros_like(x)], axis=-1), atol=1e-12)
    (half,) = ours("DFT", [x], {"onesided": 1})
    np.testing.assert_allclose(half, spectrum[:, :5])
    (real,) = ours("DFT", [half], {"onesided": 1, "inverse": 1})
    np.testing.assert_allclose(real, x, atol=1e-12)


def test_stft_frames_are_windowed_dfts():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 10, 1)).astype(np.float32)
    (window,) = ours("HannWindow", [np.array(4, np.int64)])
    (y,) = ours("STFT", [x, np.array(3, np.int64), window])
    assert y.shape == (1, 3, 3, 2)
    for f in range(3):
        frame = x[:, 3 * f:3 * f + 4] * window[:, np.newaxis]
        (want,) = ours("DFT", [frame], {"onesided": 1})
        np.testing.assert_allclose(y[:, f], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ShapeError, match="frame_length"):
        ours("STFT", [x, np.array(1, np.int64), None, np.array(11, np.int64)])


def test_mel_weight_matrix_has_unit_peaks():
    inputs = [np.array(8, np.int64), np.array(64, np.int64), np.array(16000, np.int64),
              np.array(100.0, np.float32), np.array(8000.0, np.float32)]
    (m,) = ours("MelWeightMatrix", inputs)
    assert m.shape == (33, 8) and m.dtype == np.float32
    np.testing.assert_array_equal(m.max(axis=0), np.ones(8))
    assert ((m >= 0) & (m <= 1)).all()
