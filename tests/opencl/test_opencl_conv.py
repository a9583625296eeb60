"""The OpenCL backend's Conv, pooling and normalization kernels against the op
library's numpy references: odd sizes, pads, strides, dilations, groups, ceil_mode,
1-D to 3-D, zero-size batches, and its exact ``supports``."""
from __future__ import annotations

import numpy as np
import pytest

# this import skips the module without OpenCL
from tests.opencl.test_opencl_backend import (BACKEND, assert_float16_rounds_float32_result, check, draw, run,
                                             run_outputs)

from dh_core import Session, zoo
from dh_core.ir import Node, TensorType
from tests.ops.oracle import ours


def conv_case(x_shape, w_shape, bias: bool, dtype: str = "float32"):
    x, w = draw(dtype, x_shape), draw(dtype, w_shape)
    return [x, w] + ([draw(dtype, (w_shape[0],))] if bias else [])


def check_sum(actual, inputs, op: str, attrs) -> None:
    """A sum of products: float32 order differs, so the error is bounded by the same
    sum over absolute values (the result itself can cancel to near zero)."""
    expected = ours(op, inputs, attrs)[0]
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    magnitude = ours(op, [np.abs(x) for x in inputs], attrs)[0]
    assert np.all(np.abs(actual - expected) <= 1e-5 * magnitude + 1e-6)


CONV_CASES = [
    ((1, 3, 9, 7), (5, 3, 3, 3), {}),
    ((2, 3, 9, 7), (5, 3, 3, 2), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
    ((2, 4, 8, 11), (6, 4, 3, 3), {"dilations": [2, 3], "pads": [2, 2, 2, 2]}),
    ((1, 4, 7, 7), (4, 4, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((2, 4, 7, 6), (4, 4, 2, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
    ((1, 2, 5, 5), (3, 2, 3, 3), {"auto_pad": "VALID", "kernel_shape": [3, 3]}),
    ((2, 6, 7, 5), (4, 3, 3, 3), {"group": 2, "pads": [1, 1, 1, 1]}),
    ((1, 6, 7, 5), (9, 2, 1, 3), {"group": 3, "strides": [1, 2]}),
    ((2, 5, 9, 8), (5, 1, 3, 3), {"group": 5, "pads": [1, 1, 1, 1], "strides": [2, 2]}),  # depthwise
    ((1, 3, 6, 6), (6, 1, 3, 3), {"group": 3, "dilations": [2, 1]}),  # depthwise, multiplier 2
    ((1, 3, 11), (4, 3, 3), {"pads": [1, 2], "strides": [2]}),
    ((2, 4, 10), (4, 1, 5), {"group": 4, "auto_pad": "SAME_UPPER"}),
    ((1, 2, 5, 6, 4), (3, 2, 2, 3, 2), {"strides": [1, 2, 1], "pads": [1, 0, 1, 0, 1, 0]}),
    ((2, 4, 4, 5, 3), (4, 2, 3, 1, 2), {"group": 2, "dilations": [1, 2, 1]}),
    ((0, 3, 5, 5), (4, 3, 3, 3), {"pads": [1, 1, 1, 1]}),
    ((2, 0, 5, 5), (4, 0, 3, 3), {}),
    ((1, 2, 0, 3), (3, 2, 1, 1), {"pads": [1, 0, 1, 0]}),
    ((1, 7, 5, 6), (9, 7, 1, 1), {}),  # pointwise: the input is its own column matrix
    ((1, 7, 5), (3, 7, 1), {"dilations": [2]}),
    ((1, 4, 5, 6), (3, 4, 1, 1), {"strides": [2, 1]}),
    ((1, 4, 5, 6), (3, 4, 1, 1), {"pads": [0, 1, 0, 0]}),
]


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
@pytest.mark.parametrize("bias", [False, True])
def test_conv_matches_reference(x_shape, w_shape, attrs, bias):
    inputs = conv_case(x_shape, w_shape, bias)
    check_sum(run("Conv", inputs, attrs, constants={1, 2}), inputs, "Conv", attrs)


@pytest.mark.parametrize("x_shape,w_shape,attrs", CONV_CASES)
def test_float16_conv_rounds_a_float32_result_once(x_shape, w_shape, attrs):
    inputs = conv_case(x_shape, w_shape, True, "float16")
    for constants in ({1, 2}, set()):
        actual = run("Conv", inputs, attrs, constants=constants)
        assert_float16_rounds_float32_result(actual, "Conv", inputs, attrs)


def test_conv_weights_as_input_and_repeated_shapes():
    """Weights that are not initializers, and a second call reusing the cached plan."""
    attrs = {"group": 2, "pads": [1, 1, 1, 1]}
    for _ in range(2):
        inputs = conv_case((2, 4, 6, 5), (6, 2, 3, 3), True)
        check_sum(run("Conv", inputs, attrs), inputs, "Conv", attrs)


POOL_CASES = [
    {"kernel_shape": [3, 2]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 0, 1], "ceil_mode": 1},
    {"kernel_shape": [2, 3], "strides": [3, 2], "ceil_mode": 1},
    {"kernel_shape": [2, 2], "dilations": [2, 3], "pads": [1, 1, 1, 1]},
    {"kernel_shape": [3, 2], "auto_pad": "SAME_UPPER", "strides": [2, 2]},
    {"kernel_shape": [3, 2], "auto_pad": "SAME_LOWER", "strides": [2, 1]},
    {"kernel_shape": [2, 2], "auto_pad": "VALID", "strides": [2, 2]},
]


def pool_input(shape, dtype: str = "float32"):
    x = draw(dtype, shape)
    if x.size:
        x.flat[x.size // 3] = np.inf
        x.flat[x.size // 2] = -np.inf
    return x


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("attrs", POOL_CASES)
@pytest.mark.parametrize("storage_order", [0, 1])
def test_max_pool_values_and_indices(attrs, storage_order, dtype):
    x = pool_input((2, 3, 7, 8), dtype)
    attrs = dict(attrs, storage_order=storage_order)
    actual, expected = run_outputs("MaxPool", [x], attrs, n_outputs=2), ours("MaxPool", [x], attrs, 2)
    for a, e in zip(actual, expected):
        check(a, e)
    check(run("MaxPool", [x], attrs), expected[0])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("attrs", POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_average_pool_matches_reference(attrs, count_include_pad, dtype):
    x = pool_input((2, 3, 7, 8), dtype)
    attrs = dict(attrs, count_include_pad=count_include_pad)
    check(run("AveragePool", [x], attrs), ours("AveragePool", [x], attrs)[0])


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("shape,attrs", [
    ((2, 3, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 2], "ceil_mode": 1}),
    ((1, 2, 5, 4, 6), {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2], "pads": [0, 1, 1, 1, 1, 0]}),
    ((0, 3, 5, 5), {"kernel_shape": [2, 2]}),
    ((2, 1, 4, 4), {"kernel_shape": [5, 5], "pads": [2, 2, 2, 2], "strides": [3, 3], "ceil_mode": 1}),
])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_pools_over_other_ranks(op, shape, attrs, dtype):
    x = pool_input(shape, dtype)
    n_outputs = 2 if op == "MaxPool" else 1
    for a, e in zip(run_outputs(op, [x], attrs, n_outputs=n_outputs), ours(op, [x], attrs, n_outputs)):
        check(a, e)


def test_max_pool_nan_wins_and_padding_never_does():
    x = -np.ones((1, 1, 3, 4), np.float32) * 5
    x[0, 0, 1, 2] = np.nan
    attrs = {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1]}
    for a, e in zip(run_outputs("MaxPool", [x], attrs, n_outputs=2), ours("MaxPool", [x], attrs, 2)):
        check(a, e)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3), (1, 4, 9), (2, 3, 5, 7), (1, 2, 3, 4, 5), (2, 3, 100, 3), (0, 3, 4, 4)])
def test_global_pools_match_reference(op, shape, dtype):
    x = draw(dtype, shape)
    check(run(op, [x]), ours(op, [x])[0])


def test_float16_global_average_pool_accumulates_in_float32():
    x = np.full((1, 2, 4, 4), 60000.0, np.float16)  # the plane's sum overflows float16, not float32
    x[0, 1] = np.nan
    check(run("GlobalAveragePool", [x]), np.array([60000.0, np.nan], np.float16).reshape(1, 2, 1, 1))


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5), (2, 3, 5, 7), (1, 2, 3, 2, 4), (0, 3, 4)])
def test_batch_normalization_matches_reference(shape):
    c = shape[1]
    x = draw("float32", shape)
    scale, b, mean = draw("float32", (c,)), draw("float32", (c,)), draw("float32", (c,))
    var = draw("float32", (c,), positive=True)
    inputs, attrs = [x, scale, b, mean, var], {"epsilon": 1e-3}
    np.testing.assert_allclose(run("BatchNormalization", inputs, attrs, constants={1, 2, 3, 4}),
                               ours("BatchNormalization", inputs, attrs)[0], rtol=1e-5, atol=1e-5)


def assert_normalized(actual, expected) -> None:
    """Dividing by a standard deviation near sqrt(epsilon) amplifies the mean's rounding."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 4, 7, 9), (2, 2, 3, 4, 5), (1, 2, 300), (0, 2, 4), (2, 3, 1)])
def test_instance_normalization_matches_reference(shape):
    x, scale, b = draw("float32", shape), draw("float32", shape[1:2]), draw("float32", shape[1:2])
    inputs = [x, scale, b]
    assert_normalized(run("InstanceNormalization", inputs, {"epsilon": 1e-5}),
                      ours("InstanceNormalization", inputs, {"epsilon": 1e-5})[0])


@pytest.mark.parametrize("shape,axis,param_shape", [
    ((4, 7), -1, (7,)), ((2, 3, 5), 1, (3, 5)), ((2, 3, 5), 1, (5,)), ((2, 3, 5), 1, (1, 5)),
    ((2, 3, 5), 0, (2, 3, 5)), ((3, 200), 1, (200,)), ((0, 4), 1, (4,)), ((6,), 0, (6,)),
])
@pytest.mark.parametrize("with_bias", [False, True])
def test_layer_normalization_and_its_statistics(shape, axis, param_shape, with_bias):
    inputs = [draw("float32", shape), draw("float32", param_shape)]
    if with_bias:
        inputs.append(draw("float32", param_shape))
    attrs = {"axis": axis, "epsilon": 1e-5}
    actual = run_outputs("LayerNormalization", inputs, attrs, n_outputs=3)
    for a, e in zip(actual, ours("LayerNormalization", inputs, attrs, 3)):
        assert_normalized(a, e)


@pytest.mark.parametrize("shape", [(2, 5), (1, 7, 4, 3), (2, 3, 5), (0, 3, 2)])
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn_matches_reference(shape, size):
    x = draw("float32", shape)
    attrs = {"size": size, "alpha": 0.1, "beta": 0.75, "bias": 2.0}
    check(run("LRN", [x], attrs), ours("LRN", [x], attrs)[0])


@pytest.mark.parametrize("shape,axis", [((5,), 0), ((3, 7), 1), ((3, 7), 0), ((2, 3, 4), 1), ((0, 3), -1)])
@pytest.mark.parametrize("p", [1, 2])
def test_lp_normalization_matches_reference(shape, axis, p):
    x = draw("float32", shape)
    if x.size:
        x.reshape(-1)[:3] = 0.0
    check(run("LpNormalization", [x], {"axis": axis, "p": p}), ours("LpNormalization", [x], {"axis": axis, "p": p})[0])


def normalization_case(op: str) -> tuple[list[np.ndarray], dict, set[int]]:
    """float16 inputs, attributes and initializer positions of one ``op`` node."""
    x = draw("float16", (2, 3, 5))
    channel = [draw("float16", (3,)) for _ in range(3)]
    if op == "BatchNormalization":
        return [x, *channel, draw("float16", (3,), positive=True)], {"epsilon": 1e-3}, {1, 2, 3, 4}
    if op == "InstanceNormalization":
        return [x, *channel[:2]], {"epsilon": 1e-3}, set()
    if op == "LayerNormalization":
        return [draw("float16", (3, 200)), draw("float16", (200,)), draw("float16", (200,))], {"axis": 1}, set()
    return [draw("float16", (1, 7, 4, 3))], {"size": 3, "alpha": 0.1, "beta": 0.75, "bias": 2.0}, set()


@pytest.mark.parametrize("op", ["BatchNormalization", "InstanceNormalization", "LayerNormalization", "LRN"])
def test_float16_normalization_rounds_a_float32_result_once(op):
    inputs, attrs, constants = normalization_case(op)
    actual = run(op, inputs, attrs, constants=constants)
    expected = ours(op, [x.astype(np.float32) for x in inputs], attrs)[0]  # the same values in float32
    assert actual.dtype == np.float16 and actual.shape == expected.shape
    # half an ulp, and float32's own error of a normalization (amplified by 1 / std)
    assert np.all(np.abs(actual.astype(np.float32) - expected) <= 2.0 ** -11 * np.abs(expected) + 1e-4)


def test_supports_claims_only_what_the_kernels_handle():
    def supports(op, types, attrs=None, outputs=1):
        node = Node(op, [f"x{i}" for i in range(len(types))], [f"y{i}" for i in range(outputs)], attrs or {})
        return BACKEND.supports(node, types)

    f32 = [TensorType("float32", s) for s in [(1, 3, 8, 8), (4, 3, 3, 3), (4,)]]
    assert supports("Conv", f32) and supports("Conv", f32[:2])
    assert not supports("Conv", [TensorType("float64", t.shape) for t in f32])
    assert not supports("Conv", [TensorType("float32", (1, 3, 2, 2, 2, 2)), TensorType("float32", (4, 3, 1, 1, 1, 1))])
    assert not supports("Conv", f32, {"auto_pad": "SAME"})
    assert supports("MaxPool", f32[:1], {"kernel_shape": [2, 2]}, outputs=2)
    assert not supports("MaxPool", [TensorType("int8", (1, 3, 8, 8))], {"kernel_shape": [2, 2]})
    assert not supports("AveragePool", f32[:1], {"kernel_shape": [2]})
    channel = TensorType("float32", (3,))
    assert supports("BatchNormalization", [f32[0]] + [channel] * 4)
    assert not supports("BatchNormalization", [f32[0]] + [channel] * 4, {"training_mode": 1}, outputs=3)
    assert not supports("BatchNormalization", [f32[0]] + [TensorType("float16", (3,))] * 4)
    assert supports("LayerNormalization", [f32[0], TensorType("float32", (1, 8))], {"axis": 2}, outputs=3)
    assert not supports("LayerNormalization", [f32[0], TensorType("float32", (8, 1))], {"axis": 2})
    assert not supports("LayerNormalization", [f32[0], TensorType("float32", (8,))], {"stash_type": 0})
    assert not supports("LpNormalization", f32[:1], {"p": 3})
    f16 = [TensorType("float16", t.shape) for t in f32]
    assert supports("Conv", f16) and not supports("Conv", [f16[0], f32[1]])
    assert supports("MaxPool", f16[:1], {"kernel_shape": [2, 2]}, outputs=2)
    assert supports("BatchNormalization", [f16[0]] + [TensorType("float16", (3,))] * 4)
    assert supports("LayerNormalization", [f16[0], TensorType("float16", (1, 8))], {"axis": 2})
    # its Mean and InvStdDev outputs are float32 (stash_type 1), which the float16 path would round
    assert not supports("LayerNormalization", [f16[0], TensorType("float16", (1, 8))], {"axis": 2}, outputs=3)
    assert not supports("LpNormalization", f16[:1])  # the float16 reference underflows where float32 does not


def test_resnet_runs_on_opencl_as_on_cpu():
    graph = zoo.resnet(blocks=(1, 1), width=8, num_classes=10, image=32)
    x = draw("float32", (2, 3, 32, 32))
    mixed = Session(graph, backends=["opencl", "cpu"], fallback="allow")
    alone = Session(graph, backends=["cpu"])
    np.testing.assert_allclose(mixed.run({"input": x})[0], alone.run({"input": x})[0], rtol=1e-4, atol=1e-4)
    placed = {n.op for p in mixed.plan.partitions if p.backend.name == "opencl" for n in p.nodes}
    assert {"Conv", "BatchNormalization", "MaxPool", "GlobalAveragePool"} <= placed
