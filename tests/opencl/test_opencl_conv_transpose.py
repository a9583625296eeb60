"""The OpenCL backend's ConvTranspose against the op library's numpy reference: both the
direct and the GEMM + col2im paths, 1-D to 3-D, strides, pads, dilations, groups,
output_padding, output_shape, auto_pad, bias and zero-size inputs."""
from __future__ import annotations

import pytest

from tests.opencl.test_opencl_backend import draw, run  # skips without OpenCL
from tests.opencl.test_opencl_conv import check_sum

from dh_core.errors import ShapeError

CASES = [
    ((1, 3, 5, 4), (3, 2, 3, 3), {}),
    ((2, 3, 5, 4), (3, 4, 3, 2), {"strides": [2, 3], "pads": [1, 0, 0, 1]}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "output_padding": [1, 0]}),
    ((2, 2, 4, 3), (2, 2, 2, 3), {"dilations": [2, 1], "strides": [1, 2]}),
    ((1, 4, 3, 3), (4, 1, 3, 3), {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ((1, 2, 3, 4), (2, 3, 3, 3), {"strides": [3, 2], "output_shape": [10, 8]}),
    ((1, 2, 3, 4), (2, 3, 3, 3), {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((2, 2, 3, 4), (2, 3, 2, 3), {"strides": [2, 3], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 7), (2, 3, 3), {"strides": [2], "pads": [1, 2]}),
    ((1, 2, 3, 4, 3), (2, 2, 2, 3, 2), {"strides": [2, 1, 2], "pads": [0, 1, 0, 1, 0, 0]}),
    # GEMM + col2im: at least GEMM_MIN_CHANNELS input channels per group
    ((1, 8, 5, 6), (8, 5, 3, 3), {}),
    ((2, 9, 6, 5), (9, 4, 3, 2), {"strides": [2, 2], "pads": [1, 0, 1, 1], "output_padding": [1, 1]}),
    ((2, 16, 4, 4), (16, 3, 3, 3), {"group": 2, "dilations": [2, 2], "strides": [2, 1]}),
    ((1, 10, 9), (10, 6, 4), {"strides": [3], "output_shape": [30]}),
    ((1, 8, 3, 3, 2), (8, 2, 2, 2, 2), {"strides": [2, 2, 2]}),
    ((3, 12, 5, 5), (12, 2, 1, 1), {"group": 1}),
    # zero-size batch, channels and spatial axes
    ((0, 2, 4, 4), (2, 3, 3, 3), {}),
    ((1, 0, 3, 3), (0, 3, 2, 2), {}),
    ((1, 2, 0, 3), (2, 3, 2, 2), {}),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", CASES)
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("constant_weights", [False, True])
def test_conv_transpose_matches_reference(x_shape, w_shape, attrs, bias, constant_weights):
    inputs = [draw("float32", x_shape), draw("float32", w_shape)]
    if bias:
        inputs.append(draw("float32", (w_shape[1] * attrs.get("group", 1),)))
    actual = run("ConvTranspose", inputs, attrs, constants={1, 2} if constant_weights else ())
    check_sum(actual, inputs, "ConvTranspose", attrs)


def test_conv_transpose_rejects_weights_that_do_not_fit():
    inputs = [draw("float32", (1, 3, 4, 4)), draw("float32", (2, 3, 3, 3))]
    with pytest.raises(ShapeError):
        run("ConvTranspose", inputs, {})
