"""The CPU backend's BatchNormalization, LRN and Sum kernels against onnx.reference and the
op library's references, and its compile-time folding of constant computations."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dh_backend_cpu.backend import CPUBackend
from dh_backend_cpu.normalization import batch_norm_factory, lrn_factory, sum_factory
from dh_core.backend import Device
from dh_core.ir import Graph, Node, TensorType, Value
from tests.ops.oracle import onnx_run, ours

TOLERANCE = {"float16": 2e-3, "float32": 1e-5, "float64": 1e-9}
FLOATS = st.sampled_from(["float32", "float64", "float16"])
SETTINGS = settings(max_examples=25, deadline=None)


def check(actual: np.ndarray, expected: np.ndarray, dtype: str, slack: float = 1) -> None:
    """``slack`` widens the tolerance against a reference that itself rounds in float16."""
    assert actual.dtype == np.dtype(dtype) and actual.shape == expected.shape
    tol = TOLERANCE[dtype] * (slack if dtype == "float16" else 1)
    np.testing.assert_allclose(actual.astype(np.float64), expected.astype(np.float64), rtol=tol, atol=tol)


def as64(arrays):
    return [a.astype(np.float64) for a in arrays]


@st.composite
def shapes(draw, min_rank: int = 2):
    return tuple(draw(st.lists(st.integers(1, 5), min_size=min_rank, max_size=5)))


def values(draw, shape, dtype: str, low=None, high=None) -> np.ndarray:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if low is not None:
        return rng.uniform(low, high, shape).astype(dtype)
    return rng.standard_normal(shape).astype(dtype)


@SETTINGS
@given(st.data(), shapes(), FLOATS, st.sampled_from([1e-5, 1e-2, 0.5]))
def test_batch_norm_matches_references(data, shape, dtype, epsilon):
    draw = data.draw
    channels = shape[1]
    x = values(draw, shape, dtype)
    params = [values(draw, (channels,), dtype, 0.5, 2.0), values(draw, (channels,), dtype),
              values(draw, (channels,), dtype), values(draw, (channels,), dtype, 0.1, 2.0)]
    attrs = {"epsilon": epsilon}
    node = Node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], attrs)
    kernel = batch_norm_factory(node, [])
    (y,) = kernel(x, *params)
    check(y, onnx_run("BatchNormalization", as64([x, *params]), attrs)[0], dtype)
    check(y, ours("BatchNormalization", [x, *params], attrs)[0], dtype, slack=4)
    new = [p * 2 for p in params]
    (again,) = kernel(x, *new)
    check(again, onnx_run("BatchNormalization", as64([x, *new]), attrs)[0], dtype)


def test_batch_norm_training_mode_uses_the_reference():
    """Training mode (batch statistics, running statistics as outputs) is the reference's."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 4)).astype(np.float32)
    params = [rng.uniform(0.5, 2, 2).astype(np.float32) for _ in range(4)]
    attrs = {"training_mode": 1}
    node = Node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y", "rm", "rv"], attrs)
    actual = batch_norm_factory(node, [])(x, *params)
    expected = ours("BatchNormalization", [x, *params], attrs, n_outputs=3)
    assert len(actual) == 3
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e)


@SETTINGS
@given(st.data(), shapes(), FLOATS, st.integers(1, 6), st.sampled_from([0.75, 0.5, 1.3]))
def test_lrn_matches_references(data, shape, dtype, size, beta):
    x = values(data.draw, shape, dtype)
    attrs = {"size": size, "beta": beta, "alpha": 0.3, "bias": 1.5}
    y = lrn_factory(Node("LRN", ["x"], ["y"], attrs), [])(x)
    # onnx.reference's LRN mixes up batch and channels (tests/ops/test_normalization.py
    # checks the library's reference against it and the spec's formula): the library's
    # reference in float64 is the oracle here
    check(y, ours("LRN", as64([x]), attrs)[0], dtype)
    check(y, ours("LRN", [x], attrs)[0], dtype, slack=2)


@SETTINGS
@given(st.data(), shapes(min_rank=0), st.lists(st.integers(0, 2), min_size=1, max_size=4), FLOATS)
def test_sum_matches_references(data, shape, trims, dtype):
    """Inputs of the full shape and of shapes that broadcast to it (also up to it)."""
    inputs = [values(data.draw, shape[min(t, len(shape)):], dtype) for t in trims]
    y = sum_factory(Node("Sum", [f"x{i}" for i in range(len(inputs))], ["y"]), [])(*inputs)
    check(y, onnx_run("Sum", inputs)[0], dtype)
    np.testing.assert_array_equal(y, ours("Sum", inputs)[0])
    assert all(y is not x for x in inputs)


def test_compile_folds_constant_computations_of_any_size():
    """ConstantOfShape of a constant shape (how some models carry their weights) runs once,
    at compile time, whatever its size."""
    shape = np.array([3, 4], np.int64)
    nodes = [Node("ConstantOfShape", ["shape"], ["w"], {"value": np.array([0.5], np.float32)}),
             Node("MatMul", ["x", "w"], ["y"])]
    graph = Graph(nodes, [Value("x", TensorType("float32", (2, 3)))], [Value("y", TensorType("float32", (2, 4)))],
                  {"shape": shape})
    program = CPUBackend().compile(graph, Device("cpu"))
    assert len(program.steps) == 1
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    (y,) = program.run([x])
    np.testing.assert_allclose(y, x @ np.full((3, 4), 0.5, np.float32))
    assert [n.op for n in graph.nodes] == ["ConstantOfShape", "MatMul"], "compile must not change its argument"


@pytest.mark.parametrize("act", ["Relu", "Sigmoid"])
def test_batch_norm_and_sum_take_activations(act):
    """Inference BatchNormalization and Sum write their own fresh arrays, so an activation
    after them fuses and runs in place."""
    rng = np.random.default_rng(1)
    inits = {n: rng.uniform(0.5, 2, 3).astype(np.float32) for n in ("s", "b", "m", "v")}
    nodes = [Node("BatchNormalization", ["x", "s", "b", "m", "v"], ["n"], {}, "bn"), Node(act, ["n"], ["a"]),
             Node("Sum", ["a", "x", "x"], ["t"], {}, "sum"), Node(act, ["t"], ["y"])]
    graph = Graph(nodes, [Value("x", TensorType("float32", (2, 3, 4)))], [Value("y", TensorType("float32", None))],
                  inits)
    program = CPUBackend().compile(graph, Device("cpu"))
    assert len(program.steps) == 2
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    n = onnx_run("BatchNormalization", [x, *(inits[k] for k in "sbmv")])[0]
    a = onnx_run(act, [n])[0]
    expected = onnx_run(act, [onnx_run("Sum", [a, x, x])[0]])[0]
    np.testing.assert_allclose(program.run([x])[0], expected, rtol=1e-5, atol=1e-6)
