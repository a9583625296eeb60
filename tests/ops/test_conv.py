"""Conv, ConvTranspose and pooling: reference vs onnx.reference, inference, the
global pools' decompositions, and the shared pad arithmetic vs ONNX shape inference."""
from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, reject, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, shape_inference

from dh_core.conformance.samples import all_samples
from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType
from dh_core.ops import registry
from dh_core.ops.base import InferContext
from dh_core.ops.conv import effective_kernel, output_size, resolve_pads, same_pads

from .oracle import assert_all_match, decomposed, infer, onnx_run, ours

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")

SAMPLES = all_samples()
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPS = ("Conv", "ConvTranspose", "DeformConv", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
CASES = [(op, d) for op in OPS for d in SAMPLES[op].dtypes]
ORACLE_CASES = [(op, d) for op, d in CASES if op != "DeformConv"]  # DeformConv: test_deform_conv_matches_onnx


def assert_same(op: str, dtype: str, got, expected) -> None:
    assert_all_match(got, expected, SAMPLES[op].tolerance_for(dtype))


def no_oracle(reason: str):
    """Drop a drawn case that onnx.reference gets wrong or cannot run (``reason`` says why)."""
    reject()


def _spatial(attrs: dict, key: str, n: int, fill: int) -> list[int]:
    return list(attrs.get(key) or [fill] * n)


def _conv_transpose_oracle(inputs, attrs):
    """onnx.reference's ConvTranspose, worked around: it mishandles group > 1 (run each
    group alone and concatenate) and output_shape without auto_pad (pass the pads the
    spec derives from output_shape instead)."""
    x, w = inputs[0], inputs[1]
    b = inputs[2] if len(inputs) > 2 else None
    attrs = dict(attrs)
    n = x.ndim - 2
    if any(p >= s for p, s in zip(_spatial(attrs, "output_padding", n, 0), _spatial(attrs, "strides", n, 1))):
        no_oracle("onnx.reference ConvTranspose (col2im) needs output_padding < stride")
    if attrs.get("auto_pad", "NOTSET").startswith("SAME") and any(
            s > effective_kernel(k, d) + p for s, k, d, p in zip(
                _spatial(attrs, "strides", n, 1), w.shape[2:], _spatial(attrs, "dilations", n, 1),
                _spatial(attrs, "output_padding", n, 0))):
        no_oracle("onnx.reference floors a negative SAME padding (stride > kernel) and shifts the output; "
                  "the library extends it at the end, as ONNX Runtime does")
    if "output_shape" in attrs and attrs.get("auto_pad", "NOTSET") == "NOTSET":
        strides, dilations = _spatial(attrs, "strides", n, 1), _spatial(attrs, "dilations", n, 1)
        out_pad = _spatial(attrs, "output_padding", n, 0)
        total = [strides[i] * (x.shape[2 + i] - 1) + out_pad[i] + effective_kernel(w.shape[2 + i], dilations[i])
                 - attrs["output_shape"][i] for i in range(n)]
        attrs.pop("output_shape")
        attrs["pads"] = [t - t // 2 for t in total] + [t // 2 for t in total]
    group = attrs.pop("group", 1)
    cg, mg = x.shape[1] // group, w.shape[1]
    parts = []
    for g in range(group):
        ins = [x[:, g * cg:(g + 1) * cg], w[g * cg:(g + 1) * cg]]
        if b is not None:
            ins.append(b[g * mg:(g + 1) * mg])
        parts.append(onnx_run("ConvTranspose", ins, attrs)[0])
    return [np.concatenate(parts, axis=1)]


def _uses_strided_max_pool(attrs: dict) -> bool:
    """Whether onnx.reference takes its index-producing MaxPool path (any stride or dilation != 1)."""
    return any(v != 1 for v in list(attrs.get("strides") or []) + list(attrs.get("dilations") or []))


def _naive_max_pool(x, attrs, n_outputs):
    """MaxPool by brute force over every window, as the ONNX text describes it; the
    output shape comes from ONNX's C++ shape inference."""
    n = x.ndim - 2
    kernel = attrs["kernel_shape"]
    strides, dilations = _spatial(attrs, "strides", n, 1), _spatial(attrs, "dilations", n, 1)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    out_shape = _onnx_shape("MaxPool", list(x.shape), None, attrs)
    begin = list(attrs.get("pads") or [0] * 2 * n)[:n]
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        for i in range(n):
            total = max(0, (out_shape[2 + i] - 1) * strides[i] + effective_kernel(kernel[i], dilations[i])
                        - x.shape[2 + i])
            begin[i] = total - total // 2 if auto_pad == "SAME_LOWER" else total // 2
    elif auto_pad == "VALID":
        begin = [0] * n
    y = np.zeros(out_shape, x.dtype)
    idx = np.zeros(out_shape, np.int64)
    order = "F" if attrs.get("storage_order") else "C"
    for pos in np.ndindex(*out_shape):
        best = None
        for tap in np.ndindex(*kernel):
            at = [pos[2 + i] * strides[i] - begin[i] + tap[i] * dilations[i] for i in range(n)]
            if all(0 <= a < x.shape[2 + i] for i, a in enumerate(at)):
                v = x[(pos[0], pos[1], *at)]
                if best is None or v > best:
                    best = v
                    flat = np.ravel_multi_index(at, x.shape[2:], order=order)
                    idx[pos] = (pos[0] * x.shape[1] + pos[1]) * int(np.prod(x.shape[2:])) + flat
        y[pos] = best
    return [y, idx][:n_outputs]


def _max_pool_oracle(x, attrs, n_outputs):
    """onnx.reference where it is right: its unit-stride path handles 2-D explicit pads
    only, and on its strided path SAME_LOWER is sized floor(in / stride) and a negative
    SAME pad (stride > kernel) shifts the windows (-1 // 2); use brute force there."""
    if not _uses_strided_max_pool(attrs) or attrs.get("auto_pad", "NOTSET").startswith("SAME"):
        return _naive_max_pool(x, attrs, n_outputs)
    as_float = x.astype(np.float64) if x.dtype.kind != "f" else x  # it pads with NaN: floats only
    out = onnx_run("MaxPool", [as_float], attrs, n_outputs)
    out[0] = out[0].astype(x.dtype)
    return out


def oracle(op: str, inputs, attrs, n_outputs: int):
    """onnx.reference's outputs for a sample, where it has them."""
    if op == "ConvTranspose":
        return _conv_transpose_oracle(inputs, attrs)
    if op == "DeformConv" and inputs[0].ndim != 4:
        no_oracle("onnx.reference DeformConv handles 2-D inputs only (1-D and 3-D: tests below)")
    if op == "MaxPool":
        return _max_pool_oracle(inputs[0], attrs, n_outputs)
    if op == "GlobalMaxPool" and inputs[0].ndim != 4:
        # onnx.reference's GlobalMaxPool reduces axes (rank-2, rank-1): right for 4-D only
        return onnx_run("ReduceMax", [inputs[0], np.arange(2, inputs[0].ndim)], {"keepdims": 1})
    if op == "AveragePool" and attrs.get("auto_pad", "NOTSET") != "NOTSET":
        if any(d != 1 for d in attrs.get("dilations") or []):
            no_oracle("onnx.reference AveragePool ignores dilations when it applies auto_pad")
        if attrs["auto_pad"] != "VALID" and _negative_same_pad(inputs[0].shape[2:], attrs):
            no_oracle("onnx.reference AveragePool does not clamp a negative SAME pad (stride > kernel) at 0")
    return onnx_run(op, inputs, attrs, n_outputs)


def _negative_same_pad(sizes, attrs) -> bool:
    strides = _spatial(attrs, "strides", len(sizes), 1)
    return any((-(-n // s) - 1) * s + k - n < 0 for n, s, k in zip(sizes, strides, attrs["kernel_shape"]))


def _n_outputs(s) -> int:
    return s.n_outputs or 1


@pytest.mark.parametrize("op,dtype", ORACLE_CASES)
@SETTINGS
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    expected = oracle(op, s.inputs, s.attrs, _n_outputs(s))
    assert_same(op, dtype, ours(op, s.inputs, s.attrs, _n_outputs(s))[: len(expected)], expected)


@pytest.mark.parametrize("dtype", SAMPLES["DeformConv"].dtypes)
@settings(SETTINGS, max_examples=15)
@given(data=st.data())
def test_deform_conv_matches_onnx(dtype, data):
    """Fewer examples: onnx.reference's DeformConv calls GridSample once per tap window."""
    s = data.draw(SAMPLES["DeformConv"].strategy(dtype))
    expected = oracle("DeformConv", s.inputs, s.attrs, 1)
    # onnx.reference's GridSample rounds positions to float32: float64 agrees to float32's tolerance
    tolerance = SAMPLES["DeformConv"].tolerance_for("float32" if dtype == "float64" else dtype)
    assert_all_match(ours("DeformConv", s.inputs, s.attrs), expected, tolerance)


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_infer_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    got = ours(op, s.inputs, s.attrs, _n_outputs(s))
    assert infer(op, s.inputs, s.attrs, _n_outputs(s)) == [TensorType(y.dtype.name, y.shape) for y in got]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@SETTINGS
@given(data=st.data())
def test_max_pool_indices_point_at_the_maxima(dtype, data):
    s = data.draw(SAMPLES["MaxPool"].strategy(dtype))
    x = s.inputs[0]
    y, idx = ours("MaxPool", [x], s.attrs, 2)
    assert idx.dtype == np.int64
    if s.attrs.get("storage_order"):
        x = x.transpose(0, 1, *range(x.ndim - 1, 1, -1))  # column-major over the spatial axes
    np.testing.assert_array_equal(x.ravel()[idx], y)


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "float64"])
@SETTINGS
@given(data=st.data())
def test_global_pool_decomposition_matches_reference(op, dtype, data):
    reduce_op = registry.get(op).reduce_op
    if registry.find(reduce_op) is None:
        pytest.skip(f"{reduce_op} is not in the op library yet")
    s = data.draw(SAMPLES[op].strategy(dtype))
    assert_same(op, dtype, decomposed(op, s.inputs), ours(op, s.inputs))


def test_conv_reference_is_fast_enough():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 16, 32, 32)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    start = time.perf_counter()
    (y,) = ours("Conv", [x, w], {"pads": [1, 1, 1, 1]})
    assert time.perf_counter() - start < 0.5
    assert y.shape == (1, 16, 32, 32)


def test_conv_depthwise_matches_per_channel_correlation():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 6)).astype(np.float64)
    w = rng.standard_normal((3, 1, 2)).astype(np.float64)
    (y,) = ours("Conv", [x, w], {"group": 3})
    for c in range(3):
        np.testing.assert_allclose(y[0, c], np.correlate(x[0, c], w[c, 0], mode="valid"))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_deform_conv_with_zero_offsets_is_conv_and_integer_offsets_shift(rank):
    """Any rank: zero offsets and no mask give Conv; without padding, an offset of +1 on
    the last axis reads the next pixel (Conv of the input shifted left, zero-filled)."""
    rng = np.random.default_rng(rank)
    sizes, kernel = (5, 4, 3)[:rank], (2, 3, 1)[:rank]
    x = rng.standard_normal((2, 4, *sizes)).astype(np.float32)
    w = rng.standard_normal((6, 2, *kernel)).astype(np.float32)
    b = rng.standard_normal(6).astype(np.float32)
    attrs = {"group": 2, "pads": [1] * 2 * rank}
    (want,) = ours("Conv", [x, w, b], attrs)
    offset = np.zeros((2, 2 * int(np.prod(kernel)) * rank, *want.shape[2:]), np.float32)
    (got,) = ours("DeformConv", [x, w, offset, b], {**attrs, "offset_group": 2})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    (want,) = ours("Conv", [np.concatenate([x[..., 1:], np.zeros_like(x[..., :1])], axis=-1), w, b], {"group": 2})
    offset = np.zeros((2, 2 * int(np.prod(kernel)) * rank, *want.shape[2:]), np.float32)
    offset.reshape(2, 2, -1, rank, *want.shape[2:])[:, :, :, rank - 1] = 1
    (got,) = ours("DeformConv", [x, w, offset, b], {"group": 2, "offset_group": 2})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_deform_conv_rejects_mismatched_offsets():
    x, w = np.ones((1, 2, 4, 4), np.float32), np.ones((1, 2, 2, 2), np.float32)
    with pytest.raises(ShapeError, match="offset"):
        ours("DeformConv", [x, w, np.zeros((1, 8, 3, 3), np.float32)], {"offset_group": 2})


def test_average_pool_count_include_pad_divisor():
    x = np.ones((1, 1, 3), np.float32)
    attrs = {"kernel_shape": [3], "pads": [1, 1]}
    np.testing.assert_allclose(ours("AveragePool", [x], attrs)[0].ravel(), [1, 1, 1])
    np.testing.assert_allclose(ours("AveragePool", [x], {**attrs, "count_include_pad": 1})[0].ravel(),
                               [2 / 3, 1, 2 / 3])


def test_max_pool_propagates_nan_and_skips_padding():
    x = np.array([[[-5.0, np.nan, 3.0, -7.0]]], np.float32)
    y, idx = ours("MaxPool", [x], {"kernel_shape": [2], "pads": [1, 1], "strides": [2]}, 2)
    assert np.isnan(y[0, 0, 1]) and idx[0, 0, 1] == 1
    assert y[0, 0, 0] == -5.0 and y[0, 0, 2] == -7.0


def _onnx_shape(op: str, x_shape, w_shape, attrs) -> list[int]:
    names = ["x", "w"] if w_shape else ["x"]
    node = helper.make_node(op, names, ["y"], **attrs)
    ins = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in zip(names, [x_shape, w_shape])]
    model = helper.make_model(helper.make_graph([node], "g", ins, [helper.make_tensor_value_info(
        "y", TensorProto.FLOAT, None)]), opset_imports=[helper.make_opsetid("", 22)])
    out = shape_inference.infer_shapes(model, strict_mode=True).graph.output[0]
    return [d.dim_value for d in out.type.tensor_type.shape.dim]


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 9), kernel=st.integers(1, 4), stride=st.integers(1, 3), dilation=st.integers(1, 3),
       pads=st.tuples(st.integers(0, 2), st.integers(0, 2)), ceil_mode=st.booleans(),
       auto_pad=st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
def test_pool_output_size_matches_onnx_shape_inference(size, kernel, stride, dilation, pads, ceil_mode, auto_pad):
    attrs = {"kernel_shape": [kernel], "strides": [stride], "dilations": [dilation], "ceil_mode": int(ceil_mode),
             "auto_pad": auto_pad}
    if auto_pad == "NOTSET":
        attrs["pads"] = list(pads)
    real = resolve_pads(auto_pad, [size], [kernel], [stride], [dilation], list(pads))
    assume(size + real[0] + real[1] >= effective_kernel(kernel, dilation))  # ONNX sizes empty outputs -1
    ours_size = output_size(size, kernel, stride, dilation, real[0], real[1], ceil_mode)
    assert _onnx_shape("MaxPool", [1, 1, size], None, attrs)[2] == ours_size
    if not ceil_mode:
        conv_attrs = {k: v for k, v in attrs.items() if k not in ("ceil_mode", "kernel_shape")}
        assert _onnx_shape("Conv", [1, 1, size], [1, 1, kernel], conv_attrs)[2] == ours_size


def test_conv_transpose_output_beyond_the_input_extends_at_the_end():
    """Negative total padding (ONNX Runtime clamps it at 0): the extra outputs hold only the bias."""
    x = np.ones((1, 1, 2), np.float32)
    w = np.ones((1, 1, 2), np.float32)
    b = np.full(1, 0.5, np.float32)
    (natural,) = ours("ConvTranspose", [x, w, b], {"strides": [2]})
    (longer,) = ours("ConvTranspose", [x, w, b], {"strides": [2], "output_shape": [6]})
    np.testing.assert_array_equal(natural.ravel(), [1.5, 1.5, 1.5, 1.5])
    np.testing.assert_array_equal(longer.ravel(), [1.5, 1.5, 1.5, 1.5, 0.5, 0.5])
    assert infer("ConvTranspose", [x, w, b], {"strides": [2], "output_shape": [6]})[0].shape == (1, 1, 6)
    (same,) = ours("ConvTranspose", [x[..., :1], w[..., :1], b], {"strides": [3], "auto_pad": "SAME_UPPER"})
    np.testing.assert_array_equal(same.ravel(), [1.5, 0.5, 0.5])


def test_same_pads_put_the_odd_pixel_where_onnx_says():
    assert same_pads(5, 2, 1, 1, lower=False) == (0, 1)
    assert same_pads(5, 2, 1, 1, lower=True) == (1, 0)
    assert same_pads(4, 1, 2, 1, lower=False) == (0, 0)  # stride beyond the kernel: no negative pads


def _infer_types(op, types, attrs):
    opdef = registry.get(op)
    node = Node(op, [f"x{i}" for i in range(len(types))], ["y"], attrs)
    return opdef.infer(InferContext(node, types, opdef.full_attrs(node), [None] * len(types)))


def test_infer_with_symbolic_and_unknown_shapes():
    x = TensorType("float32", ("N", 3, "H", 8))
    w = TensorType("float32", (6, 3, 3, 3))
    assert _infer_types("Conv", [x, w], {}) == [TensorType("float32", ("N", 6, None, None))]
    assert _infer_types("Conv", [TensorType("float32", None), w], {}) == [TensorType("float32", None)]
    assert _infer_types("MaxPool", [TensorType("float32", ("N", 3, 7, 7))], {"kernel_shape": [3, 3]}) == [
        TensorType("float32", ("N", 3, 5, 5))]
    assert _infer_types("GlobalAveragePool", [x], {}) == [TensorType("float32", ("N", 3, 1, 1))]
    with pytest.raises(ShapeError):
        _infer_types("MaxPool", [TensorType("float32", (1, 3, 7, 7))], {"kernel_shape": [3]})
