"""Vision ops: our references against onnx.reference, type inference against the
actual outputs (with and without constant inputs)."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from dh_core.conformance.samples import Sample, all_samples
from dh_core.ops import registry
from dh_core.ops.base import InferContext
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dh_core.errors import MissingDependencyError, ShapeError
from dh_core.ir import Node, TensorType

from .oracle import (
    assert_infer_matches,
    assert_infer_survives_unknown_rank,
    assert_matches,
    draw_sample,
    infer,
    infer_compatible,
    onnx_run,
    ours,
    sample_outputs,
)

OPS = ("GridSample", "NonMaxSuppression", "LpPool", "MaxUnpool", "AffineGrid", "RoiAlign", "MaxRoiPool")
CONSTANT_INPUTS = {"MaxUnpool": (2,), "AffineGrid": (1,)}
DATA_DEPENDENT = {"NonMaxSuppression"}
ORACLE_GAPS = {("MaxRoiPool", d): "onnx.reference has no MaxRoiPool (ONNX Runtime is its oracle)"
               for d in ("float16", "float32", "float64")}
# onnx.reference weighs GridSample taps in the input's dtype or, for coordinates it
# holds as float32, in float32 arithmetic, and returns AffineGrid's grids as float32;
# ours works in float64, so results differ by that rounding.
ORACLE_TOLERANCE = {("AffineGrid", "float64"): (1e-6, 1e-6), ("GridSample", "float64"): (1e-5, 1e-5),
                    ("GridSample", "float16"): (2e-2, 5e-2)}

SAMPLES = all_samples()
CASES = [(op, dtype) for op in OPS for dtype in SAMPLES[op].dtypes]
ORACLE_CASES = [pytest.param(op, dtype, marks=pytest.mark.skip(reason=ORACLE_GAPS[op, dtype]))
                if (op, dtype) in ORACLE_GAPS else (op, dtype) for op, dtype in CASES]
EXAMPLES = settings(max_examples=30, deadline=None)


def oracle_case(op: str, sample: Sample) -> Sample:
    """The sample as fed to onnx.reference, adjusted around its known gaps."""
    if op == "GridSample":
        x, grid = sample.inputs
        # onnx.reference reflects within a zero-width span (an axis of size 1 with
        # align_corners) by dividing by zero, and returns a flat array for empty outputs.
        assume(not (sample.attrs["padding_mode"] == "reflection" and sample.attrs["align_corners"]
                    and 1 in x.shape[2:]))
        assume(grid.size)
        # It stores denormalized coordinates as float32, which moves float64 ones.
        assume(grid.dtype != np.float64 or coordinates_fit_float32(x, grid, sample.attrs["align_corners"]))
    if op == "LpPool" and sample.attrs.get("auto_pad", "NOTSET").startswith("SAME"):
        # onnx.reference pads with np.pad, which rejects the negative SAME pad of a
        # stride above the kernel.
        strides = sample.attrs.get("strides") or [1] * len(sample.attrs["kernel_shape"])
        assume(all(s <= k for s, k in zip(strides, sample.attrs["kernel_shape"])))
    if op == "LpPool":
        # onnx.reference computes LpPool as a mean of |x|^p times the kernel size, so the
        # overhang of a ceil_mode window counts as the window's mean instead of zero.
        assume(not sample.attrs.get("ceil_mode"))
        # It also sizes auto_pad outputs and pads from the undilated kernel.
        assume(sample.attrs.get("auto_pad", "NOTSET") == "NOTSET" or not sample.attrs.get("dilations"))
    if op == "LpPool" and sample.inputs[0].dtype == np.float16:
        # onnx.reference raises |x|^p in float16, where small values underflow to zero
        # (0.002 ** 3) and large ones overflow; it gets the inputs in float32, and its
        # result is rounded to float16 for the comparison.
        return Sample([sample.inputs[0].astype(np.float32)], sample.attrs)
    if op == "AffineGrid" and sample.attrs["align_corners"]:
        # onnx.reference steps by 2 / (size - 1), infinite for an axis of size 1.
        assume(1 not in sample.inputs[1][2:])
    if op == "NonMaxSuppression":
        # onnx.reference needs max_output_boxes_per_class and iou_threshold: pass their defaults.
        defaults = [np.array([0], np.int64), np.array([0], np.float32)]
        inputs = sample.inputs + defaults[len(sample.inputs) - 2:]
        return Sample(inputs, sample.attrs)
    return sample


def coordinates_fit_float32(x: np.ndarray, grid: np.ndarray, align_corners: int) -> bool:
    """Whether GridSample's pixel coordinates of a float64 grid are float32 numbers."""
    r = grid.shape[-1]
    for i, size in enumerate(x.shape[2:]):
        g = grid[..., r - 1 - i]
        pos = (g + 1) / 2 * (size - 1) if align_corners else ((g + 1) * size - 1) / 2
        if np.any(pos != pos.astype(np.float32)):
            return False
    return True


@pytest.mark.parametrize(("op", "dtype"), ORACLE_CASES)
@EXAMPLES
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    sample = draw_sample(data, op, dtype)
    n = sample_outputs(op, sample)
    case = oracle_case(op, sample)
    got = ours(op, sample.inputs, sample.attrs, n)
    want = onnx_run(op, case.inputs, case.attrs, n)
    if op == "AffineGrid" or (op == "LpPool" and dtype == "float16"):
        # onnx.reference returns float32 grids whatever theta's dtype; LpPool: see oracle_case.
        want = [w.astype(g.dtype) for g, w in zip(got, want)]
    assert len(got) == len(want) == n
    for g, w in zip(got, want):
        tolerance = ORACLE_TOLERANCE.get((op, dtype), SAMPLES[op].tolerance_for(g.dtype.name))
        assert_matches(g, w, tolerance)



@pytest.mark.parametrize(("op", "dtype"), CASES)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_infer_matches_outputs(op, dtype, data):
    assert_infer_matches(op, draw_sample(data, op, dtype), CONSTANT_INPUTS.get(op, ()), op in DATA_DEPENDENT)


def test_every_op_is_registered_with_samples():
    for op in OPS:
        opdef = registry.get(op)
        assert not opdef.composite, op
        assert set(SAMPLES[op].dtypes) == set(opdef.dtypes(opdef.inputs[0].type)), op


def test_inference_never_crashes_on_unknown_rank():
    for op in OPS:
        assert_infer_survives_unknown_rank(op)




# -- ImageDecoder: its oracle is the pixels that were encoded -------------------------------
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_image_decoder_returns_the_encoded_pixels(data):
    """Streams built from known pixels (PPM, PGM, BMP) decode to those pixels, channels
    reversed for BGR; Grayscale is Pillow's luma, as onnx.reference computes it; streams
    that are no image give an empty image."""
    s = data.draw(SAMPLES["ImageDecoder"].strategy("uint8"))
    fmt = s.attrs["pixel_format"]
    (got,) = ours("ImageDecoder", s.inputs, s.attrs)
    stream = s.inputs[0].tobytes()
    channels = 1 if fmt == "Grayscale" else 3
    assert got.dtype == np.uint8 and got.ndim == 3 and got.shape[2] == channels
    if not stream.startswith((b"P5", b"P6", b"BM")):
        assert got.shape == (0, 0, channels)
    elif fmt == "Grayscale":
        np.testing.assert_array_equal(got, onnx_run("ImageDecoder", s.inputs, s.attrs)[0])
    else:
        pixels = _pixels_of(stream)
        np.testing.assert_array_equal(got, pixels[:, :, ::-1] if fmt == "BGR" else pixels)
    assert infer_compatible(infer("ImageDecoder", s.inputs, s.attrs)[0], got)


def _pixels_of(stream: bytes) -> np.ndarray:
    """The RGB pixels in a stream built by the samples' encoders (gray repeated for PGM)."""
    if stream.startswith(b"BM"):
        w, h = np.frombuffer(stream[18:26], "<i4")
        rows = np.frombuffer(stream[54:], np.uint8).reshape(h, -1)[:, :3 * w].reshape(h, w, 3)
        return rows[::-1, :, ::-1]
    magic, size, _, body = stream.split(b"\n", 3)
    w, h = map(int, size.split())
    flat = np.frombuffer(body, np.uint8)
    return flat.reshape(h, w, 3) if magic == b"P6" else np.repeat(flat.reshape(h, w, 1), 3, axis=2)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_image_decoder_lossless_formats_round_trip(fmt):
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    stream = np.frombuffer(buffer.getvalue(), np.uint8)
    np.testing.assert_array_equal(ours("ImageDecoder", [stream])[0], pixels)
    np.testing.assert_array_equal(ours("ImageDecoder", [stream], {"pixel_format": "BGR"})[0], pixels[:, :, ::-1])


def test_image_decoder_without_pillow_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(MissingDependencyError, match="'pillow'"):
        ours("ImageDecoder", [np.frombuffer(b"P5\n1 1\n255\n\x07", np.uint8)])
    with pytest.raises(ShapeError, match="pixel_format"):
        ours("ImageDecoder", [np.zeros(3, np.uint8)], {"pixel_format": "CMYK"})


# -- semantics beyond the oracle's reach ---------------------------------------------------
def test_lp_pool_ceil_mode_overhang_adds_nothing():
    x = np.ones((1, 1, 4), np.float32)
    (got,) = ours("LpPool", [x], {"kernel_shape": [3], "strides": [2], "ceil_mode": 1, "p": 1})
    np.testing.assert_array_equal(got, [[[3, 2]]])


def test_non_max_suppression_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[[0, 0, 1, 1], [0, 0.1, 1, 1.1], [0, 2, 1, 3]]], np.float32)
    scores = np.array([[[0.8, 0.9, 0.7]]], np.float32)
    (got,) = ours("NonMaxSuppression", [boxes, scores, np.array([3]), np.array([0.5], np.float32)])
    np.testing.assert_array_equal(got, [[0, 0, 1], [0, 0, 2]])
    (none,) = ours("NonMaxSuppression", [boxes, scores])
    assert none.shape == (0, 3)


@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
def test_grid_sample_at_the_pixel_centres_returns_the_input(padding_mode):
    x = np.arange(12, dtype=np.float64).reshape(1, 1, 3, 4)
    ys, xs = np.meshgrid(np.linspace(-1, 1, 3), np.linspace(-1, 1, 4), indexing="ij")
    grid = np.stack([xs, ys], axis=-1)[None]
    for mode in ("nearest", "linear", "cubic"):
        (got,) = ours("GridSample", [x, grid], {"align_corners": 1, "mode": mode, "padding_mode": padding_mode})
        np.testing.assert_allclose(got, x, atol=1e-12)


def onnxruntime_run(op: str, sample: Sample) -> list[np.ndarray]:
    """Run one node of a sample on ONNX Runtime's CPU kernels (opset 21: it registers
    MaxRoiPool up to opset 21, whose schema opset 22 only widens to more dtypes)."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import helper

    names = [f"x{i}" for i in range(len(sample.inputs))]
    node = helper.make_node(op, names, ["y0"], **sample.attrs)
    graph = helper.make_graph(
        [node], "g",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
         for n, x in zip(names, sample.inputs)],
        [helper.make_tensor_value_info("y0", helper.np_dtype_to_tensor_dtype(sample.inputs[0].dtype), None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, dict(zip(names, sample.inputs)))


@EXAMPLES
@given(data=st.data())
def test_max_roi_pool_matches_onnxruntime(data):
    sample = draw_sample(data, "MaxRoiPool", "float32")
    (got,) = ours("MaxRoiPool", sample.inputs, sample.attrs)
    (want,) = onnxruntime_run("MaxRoiPool", sample)
    assert_matches(got, want, (0, 0))


def test_symbolic_dims_flow_through_vision_ops():
    def infer_types(op, types, attrs=None, constants=()):
        opdef = registry.get(op)
        node = Node(op, [f"x{i}" for i in range(len(types))], ["y0"], dict(attrs or {}))
        consts = list(constants) + [None] * (len(types) - len(constants))
        return opdef.infer(InferContext(node, types, opdef.full_attrs(node), consts))

    x = TensorType("float32", ("N", "C", 8, 8))
    assert infer_types("GridSample", [x, TensorType("float32", ("N", "H", "W", 2))]) == [
        TensorType("float32", ("N", "C", "H", "W"))]
    assert infer_types("RoiAlign", [x, TensorType("float32", ("R", 4)), TensorType("int64", ("R",))],
                       {"output_height": 2, "output_width": 3}) == [TensorType("float32", ("R", "C", 2, 3))]
    assert infer_types("LpPool", [x], {"kernel_shape": [3, 3], "strides": [2, 2]}) == [
        TensorType("float32", ("N", "C", 3, 3))]
    assert infer_types("AffineGrid", [TensorType("float64", ("N", 2, 3)), TensorType("int64", (4,))]) == [
        TensorType("float64", ("N", None, None, 2))]
    assert infer_types("NonMaxSuppression", [TensorType("float32", (1, "K", 4)),
                                             TensorType("float32", (1, 3, "K"))]) == [
        TensorType("int64", (None, 3))]
