"""The OpenCL backend's kernels against the op library's numpy references, its exact
``supports``, a heterogeneous session (opencl + cpu), and the program cache counter.
Skipped, with the reason, where pyopencl or an OpenCL platform is missing."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytest.importorskip("pyopencl", reason="pyopencl is not installed")
pytest.importorskip("dh_backend_opencl", reason="dh-backend-opencl is not installed")

from dh_backend_opencl.backend import OpenCLBackend
from dh_backend_opencl.elementwise import OPS
from dh_backend_opencl.kernels import REDUCTIONS
from dh_core.ops import registry

from dh_core import Session
from dh_core.backend import Device
from dh_core.builder import GraphBuilder
from dh_core.errors import DeviceError
from dh_core.ir import Node, TensorType
from tests.ops.oracle import ours

BACKEND = OpenCLBackend()
if BACKEND.available() is not True:
    pytest.skip(f"OpenCL backend not available: {BACKEND.available()}", allow_module_level=True)
DEVICE = Device("opencl:0")
RNG = np.random.default_rng(0)


def run(op: str, inputs, attrs=None, constants=()):
    """Run a one-node graph on the OpenCL backend; ``constants`` marks inputs that are
    initializers (uploaded once at compile time, as a model's weights are)."""
    return run_outputs(op, inputs, attrs, constants)[0]


def run_outputs(op: str, inputs, attrs=None, constants=(), n_outputs: int = 1) -> list[np.ndarray]:
    """``run`` for a node with ``n_outputs`` outputs, all of them graph outputs."""
    b = GraphBuilder(op)
    names = []
    for i, x in enumerate(inputs):
        if x is None:
            names.append("")
        elif i in constants:
            names.append(b.constant(x, f"c{i}"))
        else:
            names.append(b.input(f"x{i}", x.dtype.name, x.shape))
    ys = b.node(op, *names, outputs=n_outputs, **(attrs or {}))
    b.output(*([ys] if isinstance(ys, str) else ys))
    graph = b.build()
    node = graph.nodes[0]
    types = [graph.value_types.get(n) if n else None for n in node.inputs]
    assert BACKEND.supports(node, types), f"{op} {types}"
    exe = BACKEND.compile(graph, DEVICE)
    feeds = [BACKEND.to_device(x, DEVICE) for i, x in enumerate(inputs) if x is not None and i not in constants]
    return [BACKEND.to_host(y) for y in exe.run(feeds)]


TOLERANCE = {"float16": (2e-3, 1e-6), "float32": (2e-5, 1e-6), "float64": (1e-12, 0.0)}
"""(rtol, atol): float16 computes in float32 and rounds once, so it may differ from a
reference that rounds each step (or calls a float32 function of other accuracy) by a
unit or two in the last place (2**-10 relative)."""
STEPWISE_FLOAT16 = {op: (1e-2, 1e-3) for op in ("Selu", "HardSigmoid", "HardSwish", "Softmax", "LogSoftmax")}
"""Ops whose float16 reference rounds after each of several steps (a * exp(x) - a,
alpha * x + beta, a sum of exponentials): the conformance suite's float16 tolerance."""


def check(actual: np.ndarray, expected: np.ndarray, op: str = "") -> None:
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if expected.dtype.kind == "f":
        rtol, atol = TOLERANCE[expected.dtype.name]
        if expected.dtype == np.float16:
            rtol, atol = STEPWISE_FLOAT16.get(op, (rtol, atol))
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True)
    else:
        np.testing.assert_array_equal(actual, expected)


def draw(dtype: str, shape, positive: bool = False) -> np.ndarray:
    if dtype == "bool":
        return RNG.random(shape) < 0.5
    if np.dtype(dtype).kind == "f":
        x = RNG.uniform(0.1, 4.0, shape) if positive else RNG.normal(0, 2, shape)
    else:
        x = RNG.integers(1 if positive else -50, 50, shape)
    return np.asarray(x, dtype=dtype)


SHAPES = {1: [((),), ((7,),), ((2, 3, 4),), ((0, 3),), ((1, 1000),)],
          2: [((), ()), ((3, 4), (4,)), ((2, 1, 5), (3, 1)), ((0, 3), (3,)), ((7,), (1,)), ((1, 4), (5, 1))],
          3: [((), (), ()), ((3, 4), (4,), (3, 1)), ((2, 1, 5), (3, 1), ()), ((0,), (1,), (0,))]}
SHAPES[None] = SHAPES[1] + SHAPES[2] + SHAPES[3]  # variadic ops
POSITIVE = {"Log", "Sqrt", "Div", "Reciprocal"}
ATTRIBUTES = {"LeakyRelu": [{"alpha": 0.3}], "Elu": [{"alpha": 0.7}], "Selu": [{"alpha": 1.5, "gamma": 0.5}],
              "HardSigmoid": [{"alpha": 0.3, "beta": 0.4}], "Mod": [{"fmod": 0}, {"fmod": 1}],
              "Gelu": [{"approximate": "none"}, {"approximate": "tanh"}],
              "IsInf": [{"detect_negative": 0}, {"detect_positive": 0}]}
CASES = [(op, dtype) for op, spec in OPS.items() for dtype in spec.dtypes
         if dtype in registry.get(op).dtypes(registry.get(op).inputs[-1].type)]


@pytest.mark.parametrize("op,dtype", CASES)
def test_elementwise_matches_reference(op, dtype):
    spec = OPS[op]
    for attrs in [{}] + ATTRIBUTES.get(op, []):
        for shapes in SHAPES[spec.arity]:
            inputs = [draw(dtype, s, op in POSITIVE) for s in shapes]
            if spec.bool_cond:
                inputs[0] = draw("bool", shapes[0])
            with np.errstate(divide="ignore", invalid="ignore"):
                check(run(op, inputs, attrs), ours(op, inputs, attrs)[0], op)


SPECIAL = {
    "float32": np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.5, 0.5, 1.5, 2.5, -3.0, 1e30], np.float32),
    # subnormal halves (6e-8 is the smallest), and values whose sum or product overflows to inf
    "float16": np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -2.5, 0.5, 2.0, 6e-8, -3e-5, 1e-5, 60000.0,
                         -65504.0], np.float16),
}
UNARY_FLOAT = [op for op, spec in OPS.items() if spec.arity == 1 and "float32" in spec.dtypes]
BINARY_FLOAT = [op for op, spec in OPS.items() if spec.arity in (2, None) and "float32" in spec.dtypes]


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("op", UNARY_FLOAT + BINARY_FLOAT)
def test_elementwise_nan_and_inf_as_the_reference(op, dtype):
    x = SPECIAL[dtype]
    inputs = [x] if op in UNARY_FLOAT else [x, x[:, None]]
    for attrs in [{}] + ATTRIBUTES.get(op, []):
        with np.errstate(all="ignore"):
            check(run(op, inputs, attrs), ours(op, inputs, attrs)[0], op)


def test_float16_rounds_once_on_store():
    big, two = np.array([60000.0, 65504.0, 1.0, 6e-8], np.float16), np.array(2.0, np.float16)
    check(run("Mul", [big, two]), np.array([np.inf, np.inf, 2.0, 1.2e-7], np.float16))
    check(run("Div", [big, np.array(65504.0, np.float16)]), ours("Div", [big, np.array(65504.0, np.float16)])[0])
    # 1 + 2**-11 is a tie that rounds to even; the three-input sum rounds after each add
    one, half_ulp = np.array([1.0], np.float16), np.array([2.0 ** -11], np.float16)
    check(run("Add", [one, half_ulp]), np.array([1.0], np.float16))
    total = run("Sum", [one, half_ulp, half_ulp])
    check(total, ours("Sum", [one, half_ulp, half_ulp])[0])
    assert total[0] == 1.0  # not 1 + 2**-10, the sum rounded once


def test_pow_with_exponents_of_other_dtypes():
    base = np.array([[2.0, -2.0, 0.5, 0.0, -0.0, np.nan, np.inf, -np.inf, -1.5]], np.float32)
    signed = [[0], [1], [2], [3], [-1], [-2], [7]]
    for dtype, values in [("int32", signed), ("int64", signed), ("int8", signed), ("float16", signed + [[0.5]]),
                          ("uint8", [[0], [3], [200]]), ("uint64", [[0], [1], [5]])]:
        exponent = np.array(values, dtype)
        with np.errstate(all="ignore"):
            check(run("Pow", [base, exponent]), ours("Pow", [base, exponent])[0])


def test_round_is_half_to_even_and_clip_bounds_are_optional():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999998, np.nan], np.float32)
    check(run("Round", [x]), np.array([0, 2, 2, -0, -2, -2, 2, np.nan], np.float32))
    low, high = np.array(-1.0, np.float32), np.array(1.0, np.float32)
    for inputs in ([x, low, None], [x, None, high], [x, low, high], [x]):
        check(run("Clip", inputs, constants={1, 2}), ours("Clip", inputs)[0])
    n = np.array([7, -7, 7, -7, 0, np.iinfo(np.int64).min], np.int64)
    d = np.array([3, 3, -3, -3, 0, -1], np.int64)
    with np.errstate(divide="ignore"):
        for fmod in (0, 1):
            check(run("Mod", [n, d], {"fmod": fmod}), ours("Mod", [n, d], {"fmod": fmod})[0])


@pytest.mark.parametrize("m,k,n", [(1, 1, 1), (17, 33, 5), (64, 64, 64), (3, 0, 4), (0, 5, 2), (40, 7, 31)])
def test_matmul_matches_reference(m, k, n):
    a, b = draw("float32", (m, k)), draw("float32", (k, n))
    actual, expected = run("MatMul", [a, b]), ours("MatMul", [a, b])[0]
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    # float32 sums in another order: the error scales with sum |a||b|, not with the
    # result, which can cancel to near zero
    bound = 1e-5 * (np.abs(a) @ np.abs(b)) + 1e-6
    assert np.all(np.abs(actual - expected) <= bound)


def assert_float16_rounds_float32_result(actual, op, inputs, attrs=None):
    """``actual`` (float16) is the float32 reference on the same values, rounded once:
    within half an ulp plus float32's summation-order error, bounded with |inputs|."""
    wide = [x.astype(np.float32) for x in inputs]
    expected = ours(op, wide, attrs)[0]
    magnitude = np.abs(ours(op, [np.abs(x) for x in wide], attrs)[0])
    assert actual.dtype == np.float16 and actual.shape == expected.shape
    bound = 2.0 ** -11 * np.abs(expected) + 1e-5 * magnitude + 2.0 ** -25
    assert np.all(np.abs(actual.astype(np.float32) - expected) <= bound)


def gemm_case(dtype: str, trans_a: int, trans_b: int, c_shape) -> tuple[list[np.ndarray], dict]:
    """Inputs and attributes of a (13, 21) x (21, 9) Gemm, C of ``c_shape`` (None: no C)."""
    m, k, n = 13, 21, 9
    a = draw(dtype, (k, m) if trans_a else (m, k))
    b = draw(dtype, (n, k) if trans_b else (k, n))
    inputs = [a, b] + ([] if c_shape is None else [draw(dtype, c_shape)])
    return inputs, {"transA": trans_a, "transB": trans_b, "alpha": 0.5, "beta": 2.0}


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (), (13, 1), (13, 9)])
def test_float16_gemm_rounds_a_float32_result_once(trans_a, trans_b, c_shape):
    inputs, attrs = gemm_case("float16", trans_a, trans_b, c_shape)
    for constants in ({1}, set()):
        assert_float16_rounds_float32_result(run("Gemm", inputs, attrs, constants=constants), "Gemm", inputs, attrs)
    big = np.full((2, 2), 300.0, np.float16)  # 2 * 300 * 300 overflows float16: inf on store
    check(run("Gemm", [big, big]), np.full((2, 2), np.inf, np.float16))
    empty = np.zeros((3, 0), np.float16), np.zeros((0, 4), np.float16), np.ones((4,), np.float16)
    check(run("Gemm", list(empty)), ours("Gemm", list(empty))[0])


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (), (9,), (13, 1), (13, 9)])
def test_gemm_matches_reference(trans_a, trans_b, c_shape):
    inputs, attrs = gemm_case("float32", trans_a, trans_b, c_shape)
    a, b = inputs[:2]
    actual, expected = run("Gemm", inputs, attrs, constants={1}), ours("Gemm", inputs, attrs)[0]
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    magnitude = 0.5 * np.abs(a.T if trans_a else a) @ np.abs(b.T if trans_b else b)
    if c_shape is not None:
        magnitude = magnitude + 2.0 * np.abs(inputs[2])
    assert np.all(np.abs(actual - expected) <= 1e-5 * magnitude + 1e-6)  # as in MatMul's test


@pytest.mark.parametrize("op", list(REDUCTIONS))
@pytest.mark.parametrize("axes", [None, [0], [1], [-1], [0, 2], [2, 0, 1]])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce_matches_reference(op, axes, keepdims):
    x = draw("float32", (3, 70, 5)) * (0.5 if op == "ReduceProd" else 1.0)
    inputs = [x, None if axes is None else np.array(axes, np.int64)]
    attrs = {"keepdims": keepdims}
    expected = ours(op, inputs, attrs)[0]
    # the summation order differs: bound the error by the same reduction of |x|
    magnitude = np.abs(ours(op, [np.abs(x), inputs[1]], attrs)[0])
    for constants in ({1}, set()) if axes is not None else ({1},):  # axes as an initializer and at run time
        actual = run(op, inputs, attrs, constants=constants)
        if op in ("ReduceMax", "ReduceMin"):
            check(actual, expected)
        else:
            assert actual.shape == expected.shape
            assert np.all(np.abs(actual - expected) <= 1e-5 * magnitude + 1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("op", list(REDUCTIONS))
def test_reduce_edge_cases(op, dtype):
    long_row = (draw("float32", (1, 1000)) * (0.2 if op == "ReduceProd" else 1.0)).astype(dtype)
    # a float16 reference rounds after every step of a long row: compare with the float32
    # reference on the same values, rounded once, as the kernel computes
    reference_row = long_row.astype(np.float32)
    check(run(op, [long_row]), ours(op, [reference_row])[0].astype(dtype))
    noop = {"noop_with_empty_axes": 1}
    check(run(op, [long_row], noop), ours(op, [reference_row], noop)[0].astype(dtype))
    specials = np.array([[1.0, np.nan, 3.0], [np.inf, 2.0, -1.0], [-np.inf, -np.inf, -np.inf],
                         [np.inf, -np.inf, 0.0], [100.0, 99.0, -3.0]], dtype)
    for axes in (None, np.array([1], np.int64)):
        inputs = [specials, axes]
        with np.errstate(all="ignore"):
            check(run(op, inputs, constants={1}), ours(op, inputs)[0])
    empty_rows = np.zeros((0, 4), dtype)
    axis = np.array([1], np.int64)
    check(run(op, [empty_rows, axis]), ours(op, [empty_rows, axis])[0])
    empty_axis = np.zeros((3, 0), dtype)
    check(run(op, [empty_axis, axis], constants={1}), ours(op, [empty_axis, axis])[0])


@pytest.mark.parametrize("op", list(REDUCTIONS))
def test_float16_reduce_accumulates_in_float32_and_rounds_once(op):
    x = (draw("float32", (3, 70, 5)) * (0.5 if op == "ReduceProd" else 1.0)).astype(np.float16)
    for axes in (None, [1], [0, 2], [2, 0, 1]):
        inputs = [x, None if axes is None else np.array(axes, np.int64)]
        # the reference on the same values in float32: no float16 rounding until the end
        expected = ours(op, [x.astype(np.float32), inputs[1]])[0]
        magnitude = np.abs(ours(op, [np.abs(x).astype(np.float32), inputs[1]])[0])
        actual = run(op, inputs, constants={1})
        assert actual.dtype == np.float16 and actual.shape == expected.shape
        bound = 2.0 ** -11 * np.abs(expected) + 1e-5 * magnitude + 2.0 ** -25  # half an ulp, subnormals too
        assert np.all(np.abs(actual.astype(np.float32) - expected) <= bound)


def test_float16_reduce_overflows_to_inf_only_on_store():
    x = np.array([[60000.0, 60000.0, -60000.0], [60000.0, 60000.0, 1.0]], np.float16)
    # 60000 + 60000 - 60000 stays finite in float32; the second row's sum overflows on store
    inputs, attrs = [x, np.array([1], np.int64)], {"keepdims": 0}
    check(run("ReduceSum", inputs, attrs), np.array([60000.0, np.inf], np.float16))
    check(run("ReduceSum", inputs, attrs), ours("ReduceSum", inputs, attrs)[0])
    check(run("ReduceMax", [x]), ours("ReduceMax", [x])[0])


def test_reduce_axes_initializer_is_not_read_at_run_time(monkeypatch):
    from dh_backend_opencl import kernels

    def no_run_time_read(buf):
        raise AssertionError("the axes initializer was read at run time")

    monkeypatch.setattr(kernels, "host_values", no_run_time_read)
    inputs = [draw("float32", (4, 6)), np.array([-1], np.int64)]
    check(run("ReduceL2", inputs, constants={1}), ours("ReduceL2", inputs)[0])


@pytest.mark.parametrize("op", ["ArgMax", "ArgMin"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "int32", "int64"])
def test_argreduce_matches_reference(op, dtype):
    ties = np.asarray(RNG.integers(0, 3, (5, 70)), dtype)
    for data in (draw(dtype, (3, 130, 4)), ties, draw(dtype, (7,))):
        for axis in range(-data.ndim, data.ndim):
            for attrs in ({"keepdims": 0}, {"keepdims": 1, "select_last_index": 1}):
                attrs = {"axis": axis, **attrs}
                check(run(op, [data], attrs), ours(op, [data], attrs)[0])
    if dtype in ("float32", "float16"):
        specials = np.array([[1.0, np.nan, 3.0, np.nan], [np.inf, 2.0, np.inf, -np.inf], [6e-8, 0.0, 6e-8, -0.0]],
                            dtype)
        for last in (0, 1):
            attrs = {"axis": 1, "select_last_index": last}
            check(run(op, [specials], attrs), ours(op, [specials], attrs)[0])


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("shape,axis", [((5,), 0), ((3, 7), 1), ((3, 7), 0), ((2, 3, 4), 1), ((2, 3, 4), -1), ((0, 3), 1)])
def test_softmax_matches_reference(op, shape, axis, dtype):
    x = (draw("float32", shape) * 20).astype(dtype)
    check(run(op, [x], {"axis": axis}), ours(op, [x], {"axis": axis})[0], op)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_softmax_nan_and_inf_as_the_reference(dtype):
    x = np.array([[1.0, np.nan, 2.0], [np.inf, 0.0, 1.0], [-np.inf, -np.inf, -np.inf], [-np.inf, 0.0, 1.0],
                  [60000.0, -60000.0, 6e-8]], dtype)
    for op in ("Softmax", "LogSoftmax"):
        with np.errstate(invalid="ignore", over="ignore"):
            check(run(op, [x], {"axis": 1}), ours(op, [x], {"axis": 1})[0], op)


def test_supports_is_exact():
    def supports(op, *types):
        node = Node(op, [f"x{i}" for i in range(len(types))], ["y"], {})
        return BACKEND.supports(node, list(types))

    f32 = TensorType("float32", (2, 3))
    assert supports("Add", f32, f32)
    assert not supports("Add", TensorType("float64", (2, 3)), TensorType("float64", (2, 3)))
    assert not supports("Div", TensorType("int32", (2,)), TensorType("int32", (2,)))
    assert supports("Max", f32, f32, f32) and not supports("Max", *[f32] * 9)
    assert supports("MatMul", TensorType("float32", (2, 2, 3)), TensorType("float32", (3, 4)))
    assert not supports("MatMul", TensorType("float64", (2, 3)), TensorType("float64", (3, 4)))
    assert not supports("MatMul", TensorType("float32", None), f32)
    assert not supports("Hardmax", f32)
    assert supports("Pow", f32, TensorType("float16", ())) and not supports("Pow", f32, TensorType("float64", ()))
    assert not supports("Pow", TensorType("int32", (2,)), TensorType("int32", (2,)))
    assert not supports("Where", f32, f32, f32)
    assert supports("Where", TensorType("bool", (2, 3)), f32, f32)
    f16 = TensorType("float16", (2, 3))
    assert supports("Add", f16, f16) and supports("Where", TensorType("bool", (2, 3)), f16, f16)
    assert not supports("Add", f16, f32) and not supports("Where", TensorType("bool", (2, 3)), f16, f32)
    assert supports("Pow", f16, TensorType("int64", ())) and supports("Sum", f16, f16, f16)
    assert all(supports(op, f16) for op in ("ReduceSum", "ReduceLogSumExp", "ArgMax", "Softmax", "LogSoftmax"))
    assert not supports("BitwiseAnd", f16, f16)
    assert not supports("MatMul", f16, TensorType("float16", (3, 4)))
    assert supports("Gemm", f16, TensorType("float16", (3, 4)), TensorType("float16", (4,)))
    assert not supports("Gemm", f16, TensorType("float16", (3, 4)), TensorType("float32", (4,)))


def test_devices_round_trip_and_bad_index():
    assert DEVICE in BACKEND.devices()
    assert all(line.startswith("opencl:") and "(" in line for line in BACKEND.describe())
    for x in (np.arange(6, dtype=np.int64).reshape(2, 3), np.array(2.5, np.float32), np.zeros((0, 2), np.float32),
              np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]):
        back = BACKEND.to_host(BACKEND.to_device(x, DEVICE))
        assert back.dtype == x.dtype and back.shape == x.shape and np.array_equal(back, x)
    with pytest.raises(DeviceError):
        OpenCLBackend().runtime("opencl:99")


def test_available_gives_the_reason_without_a_platform(monkeypatch):
    from dh_backend_opencl import runtime

    monkeypatch.setattr(runtime, "all_devices", list)
    assert "no OpenCL platform" in OpenCLBackend().available()


def mixed_graph():
    """MatMul, Add, Relu (opencl), Hardmax (cpu only), Softmax (opencl)."""
    rng = np.random.default_rng(1)
    b = GraphBuilder("mixed")
    x = b.input("x", "float32", (4, 8))
    w = b.constant(rng.normal(size=(8, 6)).astype(np.float32), "w")
    bias = b.constant(rng.normal(size=6).astype(np.float32), "bias")
    h = b.Relu(b.Add(b.MatMul(x, w), bias))
    b.output(b.Softmax(b.Hardmax(h), axis=-1))
    return b.build()


def test_session_opencl_and_cpu_matches_cpu_and_plan_shows_copies():
    x = draw("float32", (4, 8))
    mixed = Session(mixed_graph(), backends=["opencl", "cpu"], fallback="allow")
    alone = Session(mixed_graph(), backends=["cpu"])
    np.testing.assert_allclose(mixed.run({"x": x})[0], alone.run({"x": x})[0], rtol=1e-5, atol=1e-6)
    placement = {n.op: p.backend.name for p in mixed.plan.partitions for n in p.nodes}
    assert placement == {"MatMul": "opencl", "Add": "opencl", "Relu": "opencl", "Hardmax": "cpu", "Softmax": "opencl"}
    assert [p.backend.name for p in mixed.plan.partitions] == ["opencl", "cpu", "opencl"]
    copies = [(c.source, c.target, c.before) for c in mixed.plan.copies]
    assert copies == [("host", "opencl", 0), ("opencl", "host", 1), ("host", "opencl", 2), ("opencl", "host", 3)]
    assert "copy %" in str(mixed.plan)


def test_second_process_compiles_nothing(tmp_path):
    script = textwrap.dedent("""
        import numpy as np
        from dh_core import Session
        from dh_backend_opencl.runtime import STATS
        from tests.opencl.test_opencl_backend import mixed_graph
        sess = Session(mixed_graph(), backends=["opencl", "cpu"], fallback="allow")
        sess.run({"x": np.ones((4, 8), np.float32)})
        print(STATS.compiled, STATS.disk_hits)
    """)
    env = dict(os.environ, DH_OPENCL_CACHE_DIR=str(tmp_path))
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    def counts():
        out = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True,
                             text=True, check=True).stdout.split()
        return int(out[-2]), int(out[-1])

    compiled, hits = counts()
    assert compiled > 0 and hits == 0
    assert counts() == (0, compiled)


def test_constants_are_uploaded_once_and_bounded():
    from dh_backend_opencl.runtime import CONSTANTS_KEPT

    rt = OpenCLBackend().runtime(DEVICE)
    origin = rt.constant(np.zeros(1, np.int64))
    for i in range(1, CONSTANTS_KEPT + 10):
        rt.constant(np.arange(i, dtype=np.int64))
        assert rt.constant(np.zeros(1, np.int64)) is origin  # recently used: kept
    assert len(rt.constants) == CONSTANTS_KEPT
    assert np.array_equal(rt.constant(np.arange(3, dtype=np.int64)).get(), np.arange(3))
