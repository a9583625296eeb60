"""The OpenCL backend's DepthToSpace, SpaceToDepth and LpPool against the op library's
numpy references: both modes, every movement dtype, odd sizes, p values, pads, strides,
dilations, ceil_mode, auto_pad, 1-D to 3-D, nan/inf and very large or small values."""
from __future__ import annotations

import numpy as np
import pytest

from tests.opencl.test_opencl_backend import BACKEND, check, draw, run  # skips without OpenCL

from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType
from tests.ops.oracle import ours


@pytest.mark.parametrize("op,shape,blocksize", [
    ("DepthToSpace", (2, 12, 3, 5), 2), ("DepthToSpace", (1, 18, 1, 4), 3), ("DepthToSpace", (1, 5, 3, 2), 1),
    ("DepthToSpace", (0, 8, 2, 2), 2), ("SpaceToDepth", (2, 3, 4, 6), 2), ("SpaceToDepth", (1, 2, 9, 3), 3),
    ("SpaceToDepth", (1, 3, 0, 4), 2),
])
@pytest.mark.parametrize("mode", ["DCR", "CRD"])
@pytest.mark.parametrize("dtype", ["float32", "int32", "int64", "bool"])
def test_block_rearrange_matches_reference(op, shape, blocksize, mode, dtype):
    x = draw(dtype, shape)
    attrs = {"blocksize": blocksize, "mode": mode}
    check(run(op, [x], attrs), ours(op, [x], attrs)[0])


def test_depth_to_space_rejects_channels_that_do_not_divide():
    with pytest.raises(ShapeError):
        run("DepthToSpace", [draw("float32", (1, 6, 2, 2))], {"blocksize": 2})


LP_CASES = [
    ((2, 3, 7, 6), {"kernel_shape": [3, 2]}),
    ((1, 2, 9, 8), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1], "p": 1}),
    ((1, 2, 8, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1, "p": 3}),
    ((1, 3, 7, 7), {"kernel_shape": [2, 2], "dilations": [2, 3], "p": 4}),
    ((1, 2, 7, 5), {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 2, 7, 5), {"kernel_shape": [3, 2], "auto_pad": "SAME_LOWER", "strides": [2, 1]}),
    ((2, 3, 11), {"kernel_shape": [4], "strides": [3], "ceil_mode": 1}),
    ((1, 2, 5, 4, 6), {"kernel_shape": [2, 2, 3], "pads": [0, 1, 1, 1, 0, 1], "p": 5}),
    ((0, 2, 5, 5), {"kernel_shape": [2, 2]}),
]


@pytest.mark.parametrize("shape,attrs", LP_CASES)
def test_lp_pool_matches_reference(shape, attrs):
    x = draw("float32", shape)
    check(run("LpPool", [x], attrs), ours("LpPool", [x], attrs)[0])


def test_lp_pool_extreme_values():
    """Magnitudes whose p-th power overflows or underflows float32, subnormals, zeros, nan and inf."""
    x = np.array([[[3e30, -4e30, 1e-30, -2e-30, 0.0, 0.0, np.inf, 1.0, np.nan, -np.inf, 2.0, 5.0,
                    1e-40, 0.0, 3e-39, -1e-45]]], np.float32)
    attrs = {"kernel_shape": [2], "strides": [2], "p": 3}
    check(run("LpPool", [x], attrs), ours("LpPool", [x], attrs)[0])


def test_lp_pool_p_zero_is_left_to_the_cpu():
    node = Node("LpPool", ["x"], ["y"], {"kernel_shape": [2], "p": 0})
    assert not BACKEND.supports(node, [TensorType("float32", (1, 1, 4))])
