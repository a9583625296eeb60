"""The OpenCL backend's Resize against the op library's numpy reference: every mode,
coordinate transformation and nearest_mode, scales or sizes (initializers or inputs),
axes, keep_aspect_ratio_policy, exclude_outside, extrapolation, antialias, odd sizes,
upsampling and downsampling, nan/inf and zero-size inputs."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from tests.opencl.test_opencl_backend import check, draw, run  # skips without OpenCL

from dh_core.errors import ShapeError
from tests.ops.oracle import ours

COORDINATE_MODES = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                    "tf_crop_and_resize"]
NEAREST_MODES = ["round_prefer_floor", "round_prefer_ceil", "floor", "ceil"]
SCALES = [[1, 1, 2.5, 1.5], [1, 1, 0.6, 0.35], [1, 2, 1.7, 0.5]]
SIZES = [[2, 3, 11, 4], [2, 3, 3, 13], [2, 3, 1, 1]]
ROI = np.array([0, 0, 0.2, 0.1, 1, 1, 0.9, 1.3], np.float32)


def resize_inputs(x, coordinate_mode, scales=None, sizes=None, roi=None):
    if roi is None and coordinate_mode == "tf_crop_and_resize":
        roi = ROI[np.r_[0:x.ndim, 4:4 + x.ndim]] if x.ndim == 4 else None
    return [x, roi, None if scales is None else np.asarray(scales, np.float32),
            None if sizes is None else np.asarray(sizes, np.int64)]


def compare(inputs, attrs, constants=(1, 2, 3)):
    """The device result against the reference; interpolation sums in another order and
    precision, so the tolerance scales with the largest input magnitude."""
    expected = ours("Resize", inputs, attrs)[0]
    actual = run("Resize", inputs, attrs, constants=set(constants))
    if attrs.get("mode", "nearest") == "nearest":
        check(actual, expected)
        return
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    finite = inputs[0][np.isfinite(inputs[0])]
    scale = float(np.abs(finite).max()) if finite.size else 1.0
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * scale, equal_nan=True)


@pytest.mark.parametrize("coordinate_mode,nearest_mode", list(itertools.product(COORDINATE_MODES, NEAREST_MODES)))
@pytest.mark.parametrize("scales,sizes", [(s, None) for s in SCALES] + [(None, s) for s in SIZES])
def test_nearest_matches_reference(coordinate_mode, nearest_mode, scales, sizes):
    x = draw("float32", (2, 3, 5, 7))
    attrs = {"mode": "nearest", "coordinate_transformation_mode": coordinate_mode, "nearest_mode": nearest_mode,
             "extrapolation_value": -7.5}
    compare(resize_inputs(x, coordinate_mode, scales, sizes), attrs)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("coordinate_mode", COORDINATE_MODES)
@pytest.mark.parametrize("scales,sizes", [(s, None) for s in SCALES] + [(None, s) for s in SIZES])
@pytest.mark.parametrize("exclude_outside", [0, 1])
def test_interpolation_matches_reference(mode, coordinate_mode, scales, sizes, exclude_outside):
    x = draw("float32", (2, 3, 5, 7))
    attrs = {"mode": mode, "coordinate_transformation_mode": coordinate_mode, "exclude_outside": exclude_outside,
             "cubic_coeff_a": -0.5, "extrapolation_value": 3.25}
    compare(resize_inputs(x, coordinate_mode, scales, sizes), attrs)


@pytest.mark.parametrize("mode", ["linear", "cubic"])
@pytest.mark.parametrize("scales", [[1, 1, 0.3, 0.45], [1, 1, 1.6, 0.7]])
def test_antialias_matches_reference(mode, scales):
    x = draw("float32", (1, 2, 13, 9))
    attrs = {"mode": mode, "antialias": 1}
    compare(resize_inputs(x, "half_pixel", scales), attrs)


@pytest.mark.parametrize("policy", ["stretch", "not_larger", "not_smaller"])
@pytest.mark.parametrize("axes,sizes", [([2, 3], [9, 4]), ([3, 1], [10, 5]), ([-1], [3])])
@pytest.mark.parametrize("mode", ["nearest", "linear"])
def test_axes_and_aspect_ratio_policy(policy, axes, sizes, mode):
    x = draw("float32", (1, 3, 6, 5))
    attrs = {"mode": mode, "axes": axes, "keep_aspect_ratio_policy": policy}
    compare(resize_inputs(x, "half_pixel", sizes=sizes), attrs)


@pytest.mark.parametrize("shape,scales", [((9,), [2.3]), ((4, 6), [0.5, 1.5]), ((2, 3, 4, 3, 5), [1, 1, 1.5, 2, 0.6])])
def test_other_ranks(shape, scales):
    x = draw("float32", shape)
    for mode in ("nearest", "linear", "cubic"):
        compare(resize_inputs(x, "asymmetric", scales), {"mode": mode, "coordinate_transformation_mode": "asymmetric"})


def test_index_inputs_that_are_not_initializers():
    """scales, sizes and roi fed at run time are read back once per value."""
    x = draw("float32", (1, 2, 5, 6))
    attrs = {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize"}
    compare(resize_inputs(x, "tf_crop_and_resize", sizes=[1, 2, 8, 3]), attrs, constants=())
    compare(resize_inputs(x, "half_pixel", scales=[1, 1, 1.5, 0.5]), {"mode": "cubic"}, constants=())


def test_nan_inf_and_identity_axes():
    x = draw("float32", (1, 1, 4, 5))
    x[0, 0, 1, 2], x[0, 0, 3, 0], x[0, 0, 0, 4] = np.nan, np.inf, -0.0
    for mode in ("nearest", "linear"):
        compare(resize_inputs(x, "half_pixel", [1, 1, 1, 1]), {"mode": mode})
        compare(resize_inputs(x, "half_pixel", [1, 1, 2, 1.5]), {"mode": mode})


@pytest.mark.parametrize("shape,scales,sizes", [((0, 3, 4, 4), [1, 1, 2, 0.5], None), ((1, 3, 4, 4), None, [1, 3, 0, 5])])
def test_zero_size(shape, scales, sizes):
    x = draw("float32", shape)
    compare(resize_inputs(x, "half_pixel", scales, sizes), {"mode": "linear"})


def test_empty_axis_cannot_be_enlarged():
    x = draw("float32", (1, 1, 0, 3))
    with pytest.raises(ShapeError):
        run("Resize", resize_inputs(x, "half_pixel", sizes=[1, 1, 4, 3]), {"mode": "linear"}, constants={1, 2, 3})
