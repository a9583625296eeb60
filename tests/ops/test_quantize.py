"""Quantize ops: our references against onnx.reference and ONNX's own node cases, type
inference against the actual outputs, and the rounding and saturation rules."""
from __future__ import annotations

import importlib

import numpy as np
import onnx
import onnx.backend.test.case.node as node_case_package
import pytest
from dh_core.conformance.samples import Sample, all_samples
from dh_core.ops import registry
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dh_core import dtypes as dt
from dh_core.ir import TensorType

from .oracle import assert_all_match, draw_sample, infer, onnx_run, ours

OPS = """QuantizeLinear DequantizeLinear DynamicQuantizeLinear MatMulInteger QLinearMatMul ConvInteger
QLinearConv""".split()
SAMPLES = all_samples()
CASES = [(op, dtype) for op in OPS for dtype in SAMPLES[op].dtypes]
EXAMPLES = settings(max_examples=30, deadline=None)
FEW_EXAMPLES = settings(max_examples=10, deadline=None)


def n_outputs(op: str) -> int:
    return len(registry.get(op).outputs)


def oracle_case(op: str, sample: Sample) -> None:
    """Reject samples that onnx.reference cannot judge."""
    if op == "ConvInteger" and len(sample.inputs) > 3 and sample.inputs[3] is not None:
        # onnx.reference expands a per-channel w_zero_point to rank 4 (2-D convolution only).
        assume(sample.inputs[3].ndim == 0 or sample.inputs[0].ndim == 4)
    if op == "DequantizeLinear" and len(sample.inputs) > 2 and sample.inputs[2] is not None:
        # onnx.reference checks that a float8 zero point is 0 with min(), which raises when it is empty.
        assume(sample.inputs[2].size or dt.name_of(sample.inputs[2].dtype) not in dt.FLOAT8)
    if op == "QLinearConv":
        # onnx.reference expands a per-channel w_scale to rank 4 (2-D convolution only).
        assume(sample.inputs[4].ndim == 0 or sample.inputs[0].ndim == 4)


def test_every_op_is_registered_with_samples():
    for op in OPS:
        opdef = registry.get(op)
        assert not opdef.composite, op
        assert set(SAMPLES[op].dtypes) == set(opdef.dtypes(opdef.inputs[0].type)), op


@pytest.mark.parametrize(("op", "dtype"), CASES)
@EXAMPLES
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    sample = draw_sample(data, op, dtype)
    oracle_case(op, sample)
    n = n_outputs(op)
    want = onnx_run(op, sample.inputs, sample.attrs, n_outputs=n)
    got = ours(op, sample.inputs, sample.attrs, n_outputs=n)
    assert_all_match(got, want, SAMPLES[op].tolerance_for(got[0].dtype.name))


@pytest.mark.parametrize(("op", "dtype"), CASES)
@FEW_EXAMPLES
@given(data=st.data())
def test_infer_gives_output_type(op, dtype, data):
    sample = draw_sample(data, op, dtype)
    n = n_outputs(op)
    got = ours(op, sample.inputs, sample.attrs, n_outputs=n)
    assert infer(op, sample.inputs, sample.attrs, n_outputs=n) == [TensorType(dt.name_of(g.dtype), g.shape)
                                                                   for g in got]


NODE_CASE_MODULES = """quantizelinear dequantizelinear dynamicquantizelinear matmulinteger qlinearmatmul
convinteger qlinearconv""".split()


def _node_cases():
    """ONNX's node cases of these ops: importing a case module records its cases (the
    whole collect_testcases() takes 40 s)."""
    for module in NODE_CASE_MODULES:
        importlib.import_module(f"onnx.backend.test.case.node.{module}")
    for case in node_case_package._NodeTestCases:
        nodes = case.model.graph.node
        if len(nodes) == 1 and nodes[0].op_type in OPS:
            for i, (inputs, outputs) in enumerate(case.data_sets):
                yield pytest.param(nodes[0], inputs, outputs, id=f"{case.name}[{i}]")


def _as_array(x) -> np.ndarray | None:
    """A case's value as an array, or None when its dtype is outside the IR."""
    if isinstance(x, onnx.TensorProto):
        if x.data_type not in {dt.onnx_code(d) for d in dt.ALL_TYPES}:
            return None
        x = onnx.numpy_helper.to_array(x)
    return x if dt.name_of(x.dtype) in dt.ALL_TYPES else None


@pytest.mark.parametrize(("node", "inputs", "outputs"), list(_node_cases()))
def test_onnx_node_cases(node, inputs, outputs):
    """ONNX's own node cases whose dtypes we have (bfloat16 scales are skipped)."""
    inputs, outputs = [_as_array(x) for x in inputs], [_as_array(y) for y in outputs]
    if any(x is None for x in inputs + outputs):
        pytest.skip("a dtype outside the IR")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    feeds = iter(inputs)
    args = [next(feeds) if name else None for name in node.input]
    got = ours(node.op_type, args, attrs, n_outputs=len(outputs))
    assert_all_match(got, outputs, (1e-6, 1e-6))


# -- semantics worth pinning down exactly ---------------------------------------
def run(op, *inputs, **attrs):
    return ours(op, list(inputs), attrs)[0]


def test_quantize_rounds_half_to_even_and_saturates():
    x = np.array([-300.0, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 300.0], np.float32)
    y = run("QuantizeLinear", x, np.array(1.0, np.float32), np.array(0, np.int8))
    np.testing.assert_array_equal(y, [-128, -2, -2, 0, 0, 2, 2, 127])
    assert y.dtype == np.int8
    y = run("QuantizeLinear", x, np.array(1.0, np.float32), np.array(10, np.uint8))
    np.testing.assert_array_equal(y, [0, 8, 8, 10, 10, 12, 12, 255])
    assert run("QuantizeLinear", x, np.array(1.0, np.float32)).dtype == np.uint8
    y = run("QuantizeLinear", x, np.array(1.0, np.float32), output_dtype=dt.onnx_code("int16"))
    assert y.dtype == np.int16 and y[0] == -300


def test_blocked_quantization_repeats_scales_along_the_axis():
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    scale = np.array([[1.0, 2.0], [4.0, 8.0]], np.float32)  # blocks of 3 along axis 1
    y = run("QuantizeLinear", x, scale, np.zeros((2, 2), np.int16), axis=1, block_size=3)
    want = np.rint(x / np.array([[1, 1, 1, 2, 2], [4, 4, 4, 8, 8]], np.float32)).astype(np.int16)
    np.testing.assert_array_equal(y, want)
    back = run("DequantizeLinear", y, scale, np.zeros((2, 2), np.int16), axis=1, block_size=3)
    assert back.dtype == np.float32 and back.shape == x.shape


def test_dequantize_per_axis_and_output_dtype():
    x = np.array([[0, 255], [128, 10]], np.uint8)
    y = run("DequantizeLinear", x, np.array([0.5, 2.0], np.float32), np.array([128, 10], np.uint8), axis=0,
            output_dtype=dt.onnx_code("float16"))
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, [[-64.0, 63.5], [236.0, 0.0]])


def test_integer_products_accumulate_in_int32():
    a = np.full((1, 300), 255, np.uint8)
    b = np.full((300, 1), -128, np.int8)
    y = run("MatMulInteger", a, b, np.array(0, np.uint8), np.array(0, np.int8))
    assert y.dtype == np.int32 and y[0, 0] == 255 * -128 * 300
    y = run("MatMulInteger", a, b, np.array(255, np.uint8))
    assert y[0, 0] == 0


def test_conv_integer_pads_count_as_the_zero_point():
    x = np.full((1, 1, 2, 2), 7, np.uint8)
    w = np.ones((1, 1, 3, 3), np.uint8)
    y = run("ConvInteger", x, w, np.array(7, np.uint8), pads=[1, 1, 1, 1])
    np.testing.assert_array_equal(y, np.zeros((1, 1, 2, 2), np.int32))
    y = run("ConvInteger", x, w, pads=[1, 1, 1, 1])
    np.testing.assert_array_equal(y, np.full((1, 1, 2, 2), 28, np.int32))


def test_qlinear_conv_per_channel_requantizes_each_output_channel():
    x = np.full((1, 1, 1, 1), 3, np.uint8)
    w = np.array([1, 2], np.int8).reshape(2, 1, 1, 1)
    one = np.array(1.0, np.float32)
    y = run("QLinearConv", x, one, np.array(0, np.uint8), w, np.array([1.0, 0.25], np.float32),
            np.zeros(2, np.int8), one, np.array(100, np.uint8), np.array([0, 10], np.int32))
    np.testing.assert_array_equal(y.reshape(-1), [103, 104])  # 3*2 + 10 = 16 -> 16 * 0.25 = 4


def test_dynamic_quantize_includes_zero_in_the_range():
    x = np.array([1.0, 2.0, 3.0], np.float32)
    y, scale, zero_point = ours("DynamicQuantizeLinear", [x], n_outputs=3)
    assert scale == np.float32(3) / np.float32(255) and zero_point == 0 and zero_point.dtype == np.uint8
    assert y[-1] == 255
    _, _, zero_point = ours("DynamicQuantizeLinear", [np.array([-1.0, 3.0], np.float32)], n_outputs=3)
    assert zero_point == 64  # 1 / (4 / 255) = 63.75


def test_qlinear_matmul_per_row_and_per_column_parameters():
    a = np.array([[10, 20], [30, 40]], np.uint8)
    b = np.array([[1, 0, 2], [0, 1, 2]], np.int8)
    a_scale, a_zp = np.array([1.0, 0.5], np.float32), np.array([10, 30], np.uint8)
    b_scale, b_zp = np.array([1.0, 2.0, 0.25], np.float32), np.array([0, 0, 1], np.int8)
    y = run("QLinearMatMul", a, a_scale, a_zp, b, b_scale, b_zp, np.array(1.0, np.float32), np.array(0, np.int8))
    acc = (a.astype(np.int32) - a_zp[:, None]) @ (b.astype(np.int32) - b_zp)  # [[0, 10, 10], [0, 10, 10]]
    want = np.rint(acc * a_scale[:, None] * b_scale).astype(np.int8)
    np.testing.assert_array_equal(y, want)
    np.testing.assert_array_equal(y, [[0, 20, 2], [0, 10, 1]])
    y = run("MatMulInteger", a, b, a_zp, b_zp)
    np.testing.assert_array_equal(y, acc)
