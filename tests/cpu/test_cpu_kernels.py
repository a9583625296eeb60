"""The CPU backend's convolution and pooling kernels against onnx.reference, the ONNX node
test cases and the op library's references, and its fusions against the unfused graphs."""
from __future__ import annotations

import functools
import itertools

import numpy as np
import onnx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx.reference import ReferenceEvaluator

from dh_backend_cpu import conv as conv_module
from dh_backend_cpu.conv import conv_factory, conv_transpose_factory
from dh_backend_cpu.fusion import fuse
from dh_backend_cpu.pool import (
    average_pool_factory,
    global_average_pool_factory,
    global_max_pool_factory,
    max_pool_factory,
)
from dh_core.ir import Graph, Node, TensorType, Value
from tests.ops.oracle import onnx_run, ours

FACTORIES = {
    "Conv": conv_factory,
    "ConvTranspose": conv_transpose_factory,
    "MaxPool": max_pool_factory,
    "AveragePool": average_pool_factory,
    "GlobalAveragePool": global_average_pool_factory,
    "GlobalMaxPool": global_max_pool_factory,
}
TOLERANCE = {"float16": 2e-3, "float32": 1e-4, "float64": 1e-10}
FLOATS = st.sampled_from(["float32", "float64", "float16"])
SETTINGS = settings(max_examples=40, deadline=None)


def run(op: str, inputs, attrs=None, n_outputs: int = 1) -> list[np.ndarray]:
    """Build the kernel of a one-node graph and run it; returns its outputs as a list."""
    node = Node(op, [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)],
                [f"y{i}" for i in range(n_outputs)], dict(attrs or {}))
    types = [None if x is None else TensorType(x.dtype.name, x.shape) for x in inputs]
    out = FACTORIES[op](node, types)(*inputs)
    return (list(out) if isinstance(out, tuple) else [out])[:n_outputs]


def check_float(actual: np.ndarray, expected: np.ndarray, dtype: str) -> None:
    """Our result in ``dtype`` against an oracle computed in float64."""
    assert actual.dtype == np.dtype(dtype)
    assert actual.shape == expected.shape
    tol = TOLERANCE[dtype]
    np.testing.assert_allclose(actual.astype(np.float64), expected, rtol=tol, atol=tol)


def as64(arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


def values(draw, shape, dtype: str) -> np.ndarray:
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def library(op: str, inputs, attrs) -> np.ndarray:
    """The op library's reference (what the conformance suite holds backends to), in float64."""
    return ours(op, inputs, attrs)[0].astype(np.float64)


# -- Conv ----------------------------------------------------------------------------
@st.composite
def conv_cases(draw):
    n = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    strides = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    dilations = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
    if draw(st.booleans()):  # depthwise, with a channel multiplier of 1 or 2
        group, cg, mg = draw(st.integers(1, 4)), 1, draw(st.integers(1, 2))
    else:
        group, cg, mg = draw(st.sampled_from([1, 1, 2, 3])), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    mode = draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    attrs: dict = {}
    pads = [0] * (2 * n)
    if mode == "NOTSET" and draw(st.booleans()):
        pads = draw(st.lists(st.integers(0, 2), min_size=2 * n, max_size=2 * n))
        attrs["pads"] = pads
    elif mode != "NOTSET":
        attrs["auto_pad"] = mode
    exts = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    low = [1 if mode.startswith("SAME") else max(1, e - pads[i] - pads[n + i]) for i, e in enumerate(exts)]
    spatial = [draw(st.integers(lo, lo + (4 if n < 3 else 1))) for lo in low]
    if any(s != 1 for s in strides) or draw(st.booleans()):
        attrs["strides"] = strides
    if any(d != 1 for d in dilations):
        attrs["dilations"] = dilations
    if group != 1:
        attrs["group"] = group
    if draw(st.booleans()):
        attrs["kernel_shape"] = kernel
    dtype = draw(FLOATS)
    x = values(draw, (draw(st.integers(1, 2)), group * cg, *spatial), dtype)
    w = values(draw, (group * mg, cg, *kernel), dtype)
    b = values(draw, (group * mg,), dtype) if draw(st.booleans()) else None
    return [x, w, b], attrs, dtype


@SETTINGS
@given(conv_cases())
def test_conv_matches_onnx_reference(case):
    inputs, attrs, dtype = case
    actual = run("Conv", inputs, attrs)[0]
    check_float(actual, onnx_run("Conv", as64(inputs), attrs)[0], dtype)
    check_float(actual, library("Conv", inputs, attrs), dtype)


@pytest.mark.parametrize("shape,wshape,attrs", [
    ((2, 6, 9, 8), (6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),
    ((1, 4, 9, 8), (8, 1, 3, 3), {"group": 4, "strides": [2, 2], "dilations": [2, 1]}),
    ((2, 6, 9, 8), (12, 3, 1, 1), {"group": 2}),
    ((3, 5, 11), (7, 5, 1), {"strides": [2]}),
    ((1, 3, 4, 5, 6), (4, 3, 2, 2, 2), {"auto_pad": "SAME_LOWER", "strides": [1, 2, 3]}),
])
def test_conv_paths(shape, wshape, attrs):
    """Depthwise, channel-multiplier depthwise, grouped 1x1, strided 1x1 and 3-D paths."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal(shape), rng.standard_normal(wshape)
    b = rng.standard_normal(wshape[0])
    expected = onnx_run("Conv", [x, w, b], attrs)[0]
    for dtype in ("float32", "float64"):
        ins = [a.astype(dtype) for a in (x, w, b)]
        check_float(run("Conv", ins, attrs)[0], expected, dtype)


def test_conv_chunks_batches_and_refreshes_weights(monkeypatch):
    """A batch bigger than the column buffer runs in chunks; a new weight array is used."""
    monkeypatch.setattr(conv_module, "COLUMN_BYTES", 1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 4, 6, 6)).astype(np.float32)
    node = Node("Conv", ["x", "w"], ["y"], {"pads": [1, 1, 1, 1]})
    kernel = conv_factory(node, [])
    for _ in range(2):
        w = rng.standard_normal((5, 4, 3, 3)).astype(np.float32)
        expected = onnx_run("Conv", as64([x, w]), node.attrs)[0]
        check_float(kernel(x, w), expected, "float32")


@pytest.mark.parametrize("wshape,attrs", [
    ((6, 1, 3, 3), {"group": 6, "pads": [1, 1, 1, 1]}),
    ((2, 6, 3, 3), {"pads": [1, 0, 2, 1], "strides": [2, 1]}),
    ((9, 6, 3, 2), {"pads": [1, 1, 1, 1], "dilations": [2, 1]}),
    ((4, 6, 1, 1), {"strides": [2, 3]}),
])
def test_conv_reuses_its_buffers_across_calls(wshape, attrs):
    """A kernel keeps its work buffers between calls: new values and new shapes through
    the same kernel still give the oracle's results."""
    rng = np.random.default_rng(2)
    kernel = conv_factory(Node("Conv", ["x", "w"], ["y"], attrs), [])
    w = rng.standard_normal(wshape).astype(np.float32)
    for shape in [(1, 6, 7, 8), (1, 6, 7, 8), (2, 6, 5, 9), (1, 6, 7, 8)]:
        x = rng.standard_normal(shape).astype(np.float32)
        first = kernel(x, w)
        check_float(first, onnx_run("Conv", as64([x, w]), attrs)[0], "float32")
        kernel(rng.standard_normal(shape).astype(np.float32), w)
        check_float(first, onnx_run("Conv", as64([x, w]), attrs)[0], "float32")


@pytest.mark.parametrize("op,shapes,attrs", [
    ("Conv", [(0, 4, 5, 5), (6, 4, 3, 3)], {"pads": [1, 1, 1, 1]}),
    ("Conv", [(2, 0, 5, 5), (6, 0, 3, 3)], {}),
    ("Conv", [(2, 4, 2, 5), (6, 4, 3, 3)], {}),
    ("Conv", [(2, 4, 5, 5), (0, 4, 3, 3)], {}),
    ("ConvTranspose", [(0, 4, 3, 3), (4, 2, 3, 3)], {"strides": [2, 2]}),
    ("ConvTranspose", [(2, 4, 0, 3), (4, 2, 3, 3)], {}),
    ("MaxPool", [(2, 3, 2, 5)], {"kernel_shape": [3, 2], "strides": [2, 2]}),
    ("MaxPool", [(0, 3, 4, 4)], {"kernel_shape": [2, 2]}),
    ("AveragePool", [(2, 3, 2, 5)], {"kernel_shape": [3, 2], "strides": [2, 2]}),
    ("AveragePool", [(2, 0, 4, 4)], {"kernel_shape": [2, 2]}),
])
def test_zero_size(op, shapes, attrs):
    """Empty batches, channels, filters and outputs give the reference's empty shapes."""
    inputs = [np.ones(shape, np.float32) for shape in shapes]
    actual = run(op, inputs, attrs)[0]
    expected = ours(op, inputs, attrs)[0]
    assert actual.shape == expected.shape and actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)


# -- ConvTranspose ------------------------------------------------------------------
def conv_transpose_oracle(inputs, attrs) -> np.ndarray:
    """onnx.reference per group: its own group handling assumes one output channel per group."""
    x, w, b = as64(inputs)
    group = attrs.get("group", 1)
    cg, mg = x.shape[1] // group, w.shape[1]
    one = {k: v for k, v in attrs.items() if k != "group"}
    parts = [onnx_run("ConvTranspose", [x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg],
                                        None if b is None else b[g * mg:(g + 1) * mg]], one)[0]
             for g in range(group)]
    return np.concatenate(parts, axis=1)


@st.composite
def conv_transpose_cases(draw):
    n = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    strides = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    dilations = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
    spatial = draw(st.lists(st.integers(1, 4 if n < 3 else 3), min_size=n, max_size=n))
    group, cg, mg = draw(st.sampled_from([1, 1, 2, 3])), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    attrs: dict = {"strides": strides}
    if any(d != 1 for d in dilations):
        attrs["dilations"] = dilations
    if group != 1:
        attrs["group"] = group
    if draw(st.booleans()):  # onnx.reference's col2im rejects output_padding >= stride
        attrs["output_padding"] = [draw(st.integers(0, s - 1)) for s in strides]
    mode = draw(st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    if mode != "NOTSET":
        attrs["auto_pad"] = mode
    elif draw(st.booleans()):
        pads = draw(st.lists(st.integers(0, 2), min_size=2 * n, max_size=2 * n))
        full = [s * (i - 1) + attrs.get("output_padding", [0] * n)[a] + (k - 1) * d + 1
                for a, (i, s, k, d) in enumerate(zip(spatial, strides, kernel, dilations))]
        assume(all(f - pads[a] - pads[n + a] >= 1 for a, f in enumerate(full)))
        attrs["pads"] = pads
    dtype = draw(FLOATS)
    x = values(draw, (draw(st.integers(1, 2)), group * cg, *spatial), dtype)
    w = values(draw, (group * cg, mg, *kernel), dtype)
    b = values(draw, (group * mg,), dtype) if draw(st.booleans()) else None
    return [x, w, b], attrs, dtype


@SETTINGS
@given(conv_transpose_cases())
def test_conv_transpose_matches_onnx_reference(case):
    inputs, attrs, dtype = case
    n = inputs[0].ndim - 2
    if attrs.get("auto_pad", "").startswith("SAME"):
        # a kernel narrower than its stride leaves SAME's total padding negative: onnx.reference
        # then extends the output in front, the op library (and we) at the end
        reach = [(k - 1) * d + 1 + p for k, d, p in zip(inputs[1].shape[2:], attrs.get("dilations", [1] * n),
                                                        attrs.get("output_padding", [0] * n))]
        assume(all(r >= s for r, s in zip(reach, attrs["strides"])))
    actual = run("ConvTranspose", inputs, attrs)[0]
    check_float(actual, conv_transpose_oracle(inputs, attrs), dtype)
    check_float(actual, library("ConvTranspose", inputs, attrs), dtype)


@pytest.mark.parametrize("auto_pad", ["NOTSET", "SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("delta", [-2, -1, 0, 1, 2, 3])
def test_conv_transpose_output_shape_sets_pads(auto_pad, delta):
    """output_shape = full size - delta: the spec's pads (the larger half in front unless
    SAME_UPPER) equal an explicit-pads run; a negative delta extends the output at the end
    with zeros, as output_padding does (ONNX Runtime's reading)."""
    rng = np.random.default_rng(delta + 2)
    x, w = rng.standard_normal((1, 2, 3, 4)), rng.standard_normal((2, 3, 3, 2))
    strides = [2, 3]
    full = [s * (i - 1) + k for i, s, k in zip(x.shape[2:], strides, w.shape[2:])]
    attrs = {"strides": strides, "output_shape": [f - delta for f in full]}
    if auto_pad != "NOTSET":
        attrs["auto_pad"] = auto_pad
    ins = [x.astype(np.float32), w.astype(np.float32)]
    actual = run("ConvTranspose", ins, attrs)[0]
    check_float(actual, library("ConvTranspose", ins, attrs), "float32")
    if delta >= 0:
        begin = delta // 2 if auto_pad == "SAME_UPPER" else delta - delta // 2
        pads = [begin, begin, delta - begin, delta - begin]
        expected = onnx_run("ConvTranspose", [x, w], {"strides": strides, "pads": pads})[0]
    else:  # onnx.reference takes no negative pads
        uncropped = onnx_run("ConvTranspose", [x, w], {"strides": strides})[0]
        expected = np.pad(uncropped, [(0, 0), (0, 0)] + [(0, -delta)] * 2)
    check_float(actual, expected, "float32")


# -- pooling -------------------------------------------------------------------------
@st.composite
def pool_cases(draw, op):
    n = draw(st.integers(1, 3))
    kernel = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    strides = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    dilations = draw(st.lists(st.integers(1, 2), min_size=n, max_size=n))
    attrs: dict = {"kernel_shape": kernel}
    if any(s != 1 for s in strides) or draw(st.booleans()):
        attrs["strides"] = strides
    if any(d != 1 for d in dilations):
        attrs["dilations"] = dilations
    mode = draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    exts = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    pads = [0] * (2 * n)
    if mode != "NOTSET":
        attrs["auto_pad"] = mode
    elif draw(st.booleans()):
        pads = [draw(st.integers(0, min(2, e - 1))) for e in exts * 2]
        attrs["pads"] = pads
    if mode == "NOTSET" and draw(st.booleans()):
        attrs["ceil_mode"] = 1
    if op == "AveragePool" and draw(st.booleans()):
        attrs["count_include_pad"] = 1
    # inputs at least one window wide: then every window reads some input position
    spatial = [draw(st.integers(e, e + (4 if n < 3 else 2))) for e in exts]
    dtypes = ["float32", "float64", "float16"] + (["int8", "uint8"] if op == "MaxPool" else [])
    dtype = draw(st.sampled_from(dtypes))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 3)), *spatial)
    if dtype.startswith(("int", "uint")):
        x = np.random.default_rng(draw(st.integers(0, 99))).integers(
            np.iinfo(dtype).min, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)
    else:
        x = values(draw, shape, dtype)
    return x, attrs, dtype


def same_pads_negative(shape, attrs: dict) -> bool:
    """SAME padding below zero (a window narrower than its stride): we pad by zero like
    TensorFlow, where onnx.reference shifts the windows."""
    if not attrs.get("auto_pad", "").startswith("SAME"):
        return False
    n = len(shape) - 2
    strides, dilations = attrs.get("strides", [1] * n), attrs.get("dilations", [1] * n)
    return any((-(-size // s) - 1) * s + (k - 1) * d + 1 < size
               for size, s, k, d in zip(shape[2:], strides, attrs["kernel_shape"], dilations))


def ceil_extra(shape, attrs: dict, out_shape) -> list[int]:
    """Positions the last windows read past the end pads."""
    n = len(shape) - 2
    strides, dilations = attrs.get("strides", [1] * n), attrs.get("dilations", [1] * n)
    pads = attrs.get("pads", [0] * (2 * n))
    return [(o - 1) * s + (k - 1) * d + 1 - size - pads[i] - pads[n + i]
            for i, (size, o, s, k, d) in enumerate(zip(shape[2:], out_shape[2:], strides,
                                                       attrs["kernel_shape"], dilations))]


def explicit_same_lower(shape, attrs: dict) -> dict:
    """SAME_LOWER as the explicit pads the spec gives it (the larger half in front)."""
    if attrs.get("auto_pad") != "SAME_LOWER":
        return attrs
    n = len(shape) - 2
    strides, dilations = attrs.get("strides", [1] * n), attrs.get("dilations", [1] * n)
    totals = [(-(-size // s) - 1) * s + (k - 1) * d + 1 - size
              for size, s, k, d in zip(shape[2:], strides, attrs["kernel_shape"], dilations)]
    rest = {k: v for k, v in attrs.items() if k != "auto_pad"}
    return {**rest, "pads": [t - t // 2 for t in totals] + [t // 2 for t in totals]}


@SETTINGS
@given(pool_cases("MaxPool"), st.booleans(), st.booleans())
def test_max_pool_matches_onnx_reference(case, with_indices, column_major):
    x, attrs, dtype = case
    assume(not same_pads_negative(x.shape, attrs))
    if column_major:
        attrs = {**attrs, "storage_order": 1}
    n_out = 2 if with_indices else 1
    got = run("MaxPool", [x], attrs, n_out)
    # onnx.reference's MaxPool computes SAME_LOWER as floor(in / stride): give it the pads
    expected = max_pool_oracle(x.astype(np.float64), explicit_same_lower(x.shape, attrs), n_out)
    assert got[0].dtype == x.dtype and got[0].shape == expected[0].shape
    np.testing.assert_array_equal(got[0], expected[0].astype(dtype))
    if with_indices:
        assert got[1].dtype == np.int64
        np.testing.assert_array_equal(got[1], expected[1])
    for mine, lib in zip(got, ours("MaxPool", [x], attrs, n_out)):
        np.testing.assert_array_equal(mine, lib)


def max_pool_oracle(x: np.ndarray, attrs: dict, n_outputs: int) -> list[np.ndarray]:
    """onnx.reference's MaxPool through its general (strided, dilated) path: for unit
    strides and dilations it takes another path that pads only 2-D inputs and has no Indices."""
    n = x.ndim - 2
    outputs = ["y", "indices"][:n_outputs]
    ref = ReferenceEvaluator(onnx.helper.make_node("MaxPool", ["x"], outputs, **attrs))
    full = {"auto_pad": "NOTSET", "ceil_mode": 0, "dilations": [1] * n, "pads": [0] * (2 * n),
            "storage_order": 0, "strides": [1] * n, **attrs}
    return list(ref.rt_nodes_[0]._max_pool(x, **full))


def test_max_pool_first_maximum_and_nan():
    """Ties keep the first position in the window; NaN wins and propagates to Y."""
    x = np.array([[[1, 3, 3, 0, np.nan, 2]]], np.float32)
    y, idx = run("MaxPool", [x], {"kernel_shape": [2], "strides": [2]}, 2)
    np.testing.assert_array_equal(y, [[[3, 3, np.nan]]])
    np.testing.assert_array_equal(idx, [[[1, 2, 4]]])
    xi = np.array([[[-128, -128, 5, 5]]], np.int8)
    y, idx = run("MaxPool", [xi], {"kernel_shape": [2], "pads": [1, 1]}, 2)
    np.testing.assert_array_equal(y, [[[-128, -128, 5, 5, 5]]])
    np.testing.assert_array_equal(idx, [[[0, 0, 2, 2, 3]]])


@SETTINGS
@given(pool_cases("AveragePool"))
def test_average_pool_matches_onnx_reference(case):
    x, attrs, dtype = case
    # onnx.reference sizes auto_pad AveragePool for the undilated kernel
    assume(attrs.get("auto_pad", "NOTSET") == "NOTSET" or "dilations" not in attrs)
    assume(not same_pads_negative(x.shape, attrs))
    expected = onnx_run("AveragePool", [x.astype(np.float64)], attrs)[0]
    # onnx.reference puts half of ceil mode's extra padding in front, shifting windows
    assume(attrs.get("auto_pad", "NOTSET") != "NOTSET" or max(ceil_extra(x.shape, attrs, expected.shape)) < 2)
    actual = run("AveragePool", [x], attrs)[0]
    check_float(actual, expected, dtype)
    check_float(actual, library("AveragePool", [x], attrs), dtype)


@pytest.mark.parametrize("op", ["MaxPool", "AveragePool"])
@pytest.mark.parametrize("auto_pad", ["VALID", "SAME_UPPER", "SAME_LOWER"])
@pytest.mark.parametrize("size,kernel,stride", [(3, 2, 2), (7, 3, 2), (6, 3, 2), (8, 3, 3)])
def test_pool_auto_pad_with_ceil_mode_matches_onnxruntime(op, auto_pad, size, kernel, stride):
    """onnx.reference refuses ceil_mode with auto_pad; like ONNX Runtime (and the op
    library) we apply ceil mode to VALID's windows too."""
    ort = pytest.importorskip("onnxruntime")
    x = np.random.default_rng(size).standard_normal((1, 2, size, size + 1)).astype(np.float32)
    attrs = {"kernel_shape": [kernel, kernel], "strides": [stride, stride], "auto_pad": auto_pad, "ceil_mode": 1}
    node = onnx.helper.make_node(op, ["x"], ["y"], **attrs)
    graph = onnx.helper.make_graph([node], "g", [onnx.helper.make_tensor_value_info("x", 1, x.shape)],
                                   [onnx.helper.make_tensor_value_info("y", 1, None)])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 22)], ir_version=10)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"x": x})[0]
    actual = run(op, [x], attrs)[0]
    check_float(actual, expected.astype(np.float64), "float32")
    check_float(actual, library(op, [x], attrs), "float32")


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("shape", [(2, 3, 5), (1, 4, 3, 6), (2, 2, 3, 2, 4)])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
def test_global_pools(op, shape, dtype):
    """Against numpy: onnx.reference's GlobalMaxPool is right for 4-D inputs only (the
    ONNX node tests below cover those)."""
    x = np.random.default_rng(len(shape)).standard_normal(shape).astype(dtype)
    reduce = np.mean if op == "GlobalAveragePool" else np.max
    expected = reduce(x.astype(np.float64), axis=tuple(range(2, x.ndim)), keepdims=True)
    check_float(run(op, [x])[0], expected, dtype)


# -- ONNX node test cases ----------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def node_test_cases() -> list:
    from onnx.backend.test.case.node import collect_testcases

    with np.errstate(all="ignore"):
        cases = collect_testcases()
    return [c for c in cases if len(c.model.graph.node) == 1 and c.model.graph.node[0].op_type in FACTORIES]


@pytest.mark.parametrize("op", sorted(FACTORIES))
def test_onnx_node_cases(op):
    cases = [c for c in node_test_cases() if c.model.graph.node[0].op_type == op]
    assert cases, f"no ONNX node test case for {op}"
    for case in cases:
        proto = case.model.graph.node[0]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in proto.attribute}
        attrs = {k: v.decode() if isinstance(v, bytes) else v for k, v in attrs.items()}
        for inputs, outputs in case.data_sets:
            got = run(op, list(inputs), attrs, len(outputs))
            for actual, expected in zip(got, outputs):
                assert actual.dtype == expected.dtype and actual.shape == expected.shape, case.name
                np.testing.assert_allclose(actual, expected, rtol=case.rtol, atol=case.atol, err_msg=case.name)


# -- fusion --------------------------------------------------------------------------
def evaluate(graph: Graph, feeds: dict, activations=None) -> list[np.ndarray]:
    """Run a graph node by node through onnx.reference, applying fused activations."""
    env = {**graph.initializers, **feeds}
    for node in graph.nodes:
        outs = onnx_run(node.op, [env[i] if i else None for i in node.inputs], node.attrs, len(node.outputs))
        if activations and node.name in activations:
            outs[0] = activations[node.name](np.array(outs[0]))
        env.update(zip(node.outputs, outs))
    return [env[v.name] for v in graph.outputs]


def conv_graph(rng, tail, conv_bias=True, extra_outputs=(), dtype="float32") -> Graph:
    """x -> Conv -> BatchNormalization -> tail nodes; tail is a list of Nodes reading 'bn'."""
    inits = {
        "W": rng.standard_normal((4, 3, 3, 3)).astype(dtype),
        "scale": rng.uniform(0.5, 2, 4).astype(dtype),
        "shift": rng.standard_normal(4).astype(dtype),
        "mean": rng.standard_normal(4).astype(dtype),
        "var": rng.uniform(0.5, 2, 4).astype(dtype),
    }
    conv_inputs = ["x", "W"]
    if conv_bias:
        inits["B"] = rng.standard_normal(4).astype(dtype)
        conv_inputs.append("B")
    nodes = [Node("Conv", conv_inputs, ["c"], {"pads": [1, 1, 1, 1]}, "conv"),
             Node("BatchNormalization", ["c", "scale", "shift", "mean", "var"], ["bn"], {"epsilon": 1e-3}, "bn"),
             *tail]
    last = tail[-1].outputs[0] if tail else "bn"
    outputs = [Value(last)] + [Value(o) for o in extra_outputs]
    return Graph(nodes, [Value("x", TensorType(dtype, (2, 3, 5, 5)))], outputs, inits)


def assert_same_results(graph: Graph, fused: Graph, activations, feeds, rtol=1e-4):
    expected = evaluate(graph, feeds)
    actual = evaluate(fused, feeds, activations)
    assert [v.name for v in fused.outputs] == [v.name for v in graph.outputs]
    for a, e in zip(actual, expected):
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("conv_bias", [True, False])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conv_batchnorm_folds(conv_bias, dtype):
    rng = np.random.default_rng(3)
    graph = conv_graph(rng, [], conv_bias, dtype=dtype)
    before = str(graph)
    fused, activations = fuse(graph)
    assert [n.op for n in fused.nodes] == ["Conv"] and not activations
    assert fused.nodes[0].outputs == ["bn"]
    assert not {"W", "scale", "shift", "mean", "var"} & set(fused.initializers)
    assert str(graph) == before, "fuse must not change its argument"
    x = rng.standard_normal((2, 3, 5, 5)).astype(dtype)
    assert_same_results(graph, fused, activations, {"x": x})


def test_conv_batchnorm_relu_becomes_one_node():
    rng = np.random.default_rng(4)
    graph = conv_graph(rng, [Node("Relu", ["bn"], ["y"], {}, "relu")])
    fused, activations = fuse(graph)
    assert [n.op for n in fused.nodes] == ["Conv"]
    assert fused.nodes[0].outputs == ["y"] and set(activations) == {fused.nodes[0].name}
    assert "c" not in fused.value_types and "bn" not in fused.value_types
    assert_same_results(graph, fused, activations, {"x": rng.standard_normal((2, 3, 5, 5)).astype(np.float32)})


def test_graph_outputs_are_not_fused_away():
    """A Conv output that is a graph output keeps its BatchNormalization; a BN output
    that is a graph output keeps its Relu."""
    rng = np.random.default_rng(5)
    graph = conv_graph(rng, [Node("Relu", ["bn"], ["y"], {}, "relu")], extra_outputs=["c", "bn"])
    fused, activations = fuse(graph)
    assert [n.op for n in fused.nodes] == ["Conv", "BatchNormalization", "Relu"] and not activations
    assert_same_results(graph, fused, activations, {"x": rng.standard_normal((2, 3, 5, 5)).astype(np.float32)})


def test_shared_intermediate_is_not_fused():
    rng = np.random.default_rng(6)
    tail = [Node("Relu", ["bn"], ["r"], {}, "relu"), Node("Add", ["bn", "r"], ["y"], {}, "add")]
    graph = conv_graph(rng, tail)
    fused, activations = fuse(graph)
    assert [n.op for n in fused.nodes] == ["Conv", "Relu", "Add"] and not activations
    assert_same_results(graph, fused, activations, {"x": rng.standard_normal((2, 3, 5, 5)).astype(np.float32)})


ACTIVATIONS = [
    ("Relu", [], {}),
    ("LeakyRelu", [], {"alpha": 0.3}),
    ("LeakyRelu", [], {}),
    ("Sigmoid", [], {}),
    ("HardSigmoid", [], {"alpha": 0.4, "beta": 0.3}),
    ("Tanh", [], {}),
    ("Clip", ["lo", "hi"], {}),
    ("Clip", ["lo"], {}),
    ("Clip", ["", "hi"], {}),
    ("Clip", [], {}),
]


@pytest.mark.parametrize("producer", ["Conv", "Gemm", "MatMul+Add", "Add"])
@pytest.mark.parametrize("act,extra,attrs", ACTIVATIONS)
def test_activation_fusion(producer, act, extra, attrs):
    rng = np.random.default_rng(7)
    inits = {"lo": np.array(-0.5, np.float32), "hi": np.array(0.7, np.float32),
             "W": rng.standard_normal((4, 3) if producer != "Conv" else (4, 3, 3, 3)).astype(np.float32),
             "bias": rng.standard_normal(3).astype(np.float32) * 4}
    if producer == "Conv":
        x_type, nodes = TensorType("float32", (2, 3, 5, 5)), [Node("Conv", ["x", "W"], ["p"], {}, "")]
    else:
        x_type = TensorType("float32", (6, 4))
        nodes = {"Gemm": [Node("Gemm", ["x", "W", "bias"], ["p"], {}, "")],
                 "MatMul+Add": [Node("MatMul", ["x", "W"], ["m"], {}, "mm"),
                                Node("Add", ["bias", "m"], ["p"], {}, "add")],
                 "Add": [Node("Add", ["x", "x"], ["p"], {}, "")]}[producer]
        if producer == "Add":
            inits.pop("W")
    nodes.append(Node(act, ["p", *extra], ["y"], attrs, "act"))
    graph = Graph(nodes, [Value("x", x_type)], [Value("y")], inits)
    fused, activations = fuse(graph)
    want = {"Conv": ["Conv"], "Gemm": ["Gemm"], "MatMul+Add": ["Gemm"], "Add": ["Add"]}[producer]
    assert [n.op for n in fused.nodes] == want
    assert fused.nodes[0].outputs == ["y"] and list(activations) == [fused.nodes[0].name]
    assert fused.nodes[0].name, "a fused node needs a name for its activation"
    unused = {"lo", "hi"} - set(extra)
    assert not unused & set(fused.initializers)
    x = rng.standard_normal(x_type.shape).astype(np.float32) * 3
    assert_same_results(graph, fused, activations, {"x": x})


def test_matmul_add_stays_when_not_a_gemm():
    """A batched MatMul cannot become a Gemm; the activation still fuses into its Add."""
    rng = np.random.default_rng(8)
    inits = {"W": rng.standard_normal((4, 3)).astype(np.float32), "bias": rng.standard_normal(3).astype(np.float32)}
    nodes = [Node("MatMul", ["x", "W"], ["m"]), Node("Add", ["m", "bias"], ["p"]), Node("Relu", ["p"], ["y"])]
    graph = Graph(nodes, [Value("x", TensorType("float32", (2, 5, 4)))], [Value("y")], inits)
    fused, activations = fuse(graph)
    assert [n.op for n in fused.nodes] == ["MatMul", "Add"]
    assert len(activations) == 1 and fused.nodes[1].name in activations
    assert_same_results(graph, fused, activations, {"x": rng.standard_normal((2, 5, 4)).astype(np.float32)})


def test_clip_with_runtime_bounds_and_chained_activations():
    """Clip bounds that are graph inputs stop a fusion; Relu then Clip compose."""
    rng = np.random.default_rng(9)
    inits = {"W": rng.standard_normal((4, 3)).astype(np.float32), "hi": np.array(0.5, np.float32)}
    nodes = [Node("Gemm", ["x", "W"], ["g"], {}, "gemm"), Node("Relu", ["g"], ["r"]),
             Node("Clip", ["r", "", "hi"], ["c"]), Node("Clip", ["c", "lo"], ["y"])]
    graph = Graph(nodes, [Value("x", TensorType("float32", (6, 4))), Value("lo", TensorType("float32", ()))],
                  [Value("y")], inits)
    fused, activations = fuse(graph)
    assert [n.op for n in fused.nodes] == ["Gemm", "Clip"] and list(activations) == ["gemm"]
    assert fused.nodes[0].outputs == ["c"]
    feeds = {"x": rng.standard_normal((6, 4)).astype(np.float32), "lo": np.array(0.1, np.float32)}
    assert_same_results(graph, fused, activations, feeds)


def test_fused_node_names_are_unique():
    rng = np.random.default_rng(10)
    inits = {"W": rng.standard_normal((4, 4)).astype(np.float32)}
    nodes = list(itertools.chain.from_iterable(
        [Node("MatMul", [src, "W"], [f"m{i}"], {}, "dup"), Node("Tanh", [f"m{i}"], [f"t{i}"], {}, "dup")]
        for i, src in enumerate(["x", "t0"])))
    graph = Graph(nodes, [Value("x", TensorType("float32", (2, 4)))], [Value("t1")], inits)
    fused, activations = fuse(graph)
    names = [n.name for n in fused.nodes]
    assert len(fused.nodes) == 2 and len(set(names)) == 2 and set(activations) == set(names)
    assert_same_results(graph, fused, activations, {"x": rng.standard_normal((2, 4)).astype(np.float32)})


@pytest.mark.parametrize("conv_bias", [True, False])
def test_channel_constants_fold_into_conv(conv_bias):
    """Conv -> BatchNormalization -> Mul -> Add (constants per channel, either operand
    order) -> Relu becomes one Conv with an activation."""
    rng = np.random.default_rng(11)
    graph = conv_graph(rng, [Node("Mul", ["bn", "k"], ["m"], {}, "mul"), Node("Add", ["d", "m"], ["a"], {}, "add"),
                             Node("Relu", ["a"], ["y"], {}, "relu")], conv_bias)
    graph.initializers["k"] = rng.uniform(-2, 2, (4, 1, 1)).astype(np.float32)
    graph.initializers["d"] = rng.standard_normal((1, 4, 1, 1)).astype(np.float32)
    fused, activations = fuse(graph)
    assert [n.op for n in fused.nodes] == ["Conv"] and list(activations) == [fused.nodes[0].name]
    assert fused.nodes[0].outputs == ["y"] and not {"k", "d"} & set(fused.initializers)
    assert_same_results(graph, fused, activations, {"x": rng.standard_normal((2, 3, 5, 5)).astype(np.float32)})


def test_channel_constants_fold_into_batchnorm():
    """A BatchNormalization after a non-Conv takes the following per-channel Mul (a scalar
    here) and Add into its scale and bias, and the Relu as its activation."""
    rng = np.random.default_rng(12)
    inits = {"scale": rng.uniform(0.5, 2, 4).astype(np.float32), "shift": rng.standard_normal(4).astype(np.float32),
             "mean": rng.standard_normal(4).astype(np.float32), "var": rng.uniform(0.5, 2, 4).astype(np.float32),
             "k": np.array(-1.5, np.float32), "d": rng.standard_normal((4, 1, 1)).astype(np.float32)}
    nodes = [Node("MaxPool", ["x"], ["p"], {"kernel_shape": [2, 2]}, "pool"),
             Node("BatchNormalization", ["p", "scale", "shift", "mean", "var"], ["bn"], {}, "bn"),
             Node("Mul", ["k", "bn"], ["m"]), Node("Add", ["m", "d"], ["a"]), Node("Relu", ["a"], ["y"])]
    graph = Graph(nodes, [Value("x", TensorType("float32", (2, 4, 5, 5)))], [Value("y")], inits,
                  value_types={"p": TensorType("float32", (2, 4, 4, 4))})
    fused, activations = fuse(graph)
    assert [n.op for n in fused.nodes] == ["MaxPool", "BatchNormalization"] and list(activations) == ["bn"]
    assert_same_results(graph, fused, activations, {"x": rng.standard_normal((2, 4, 5, 5)).astype(np.float32)})


@pytest.mark.parametrize("operand", ["spatial", "graph input", "other dtype"])
def test_constants_that_are_not_per_channel_stay(operand):
    """A Mul whose operand varies along a spatial axis, is not a constant, or has another
    dtype is left alone."""
    rng = np.random.default_rng(13)
    graph = conv_graph(rng, [Node("Mul", ["bn", "k"], ["y"], {}, "mul")])
    if operand == "spatial":
        graph.initializers["k"] = rng.standard_normal((4, 1, 5)).astype(np.float32)
    elif operand == "other dtype":
        graph.initializers["k"] = rng.standard_normal((4, 1, 1)).astype(np.float64)
    else:
        graph.inputs.append(Value("k", TensorType("float32", (4, 1, 1))))
    fused, _ = fuse(graph)
    assert [n.op for n in fused.nodes] == ["Conv", "Mul"]
    if operand == "spatial":
        assert_same_results(graph, fused, {}, {"x": rng.standard_normal((2, 3, 5, 5)).astype(np.float32)})
