"""MatMul, Gemm and Einsum: reference vs onnx.reference, inference, Gemm's decomposition."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dh_core.conformance.samples import all_samples
from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType
from dh_core.ops import registry
from dh_core.ops.base import Decomposer, InferContext
from dh_core.ops.linalg import MATMUL_TYPES

from .oracle import assert_all_match, decomposed, infer, onnx_run, ours

SAMPLES = all_samples()
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CASES = [("MatMul", d) for d in MATMUL_TYPES] + [("Gemm", d) for d in MATMUL_TYPES] + [
    ("Einsum", d) for d in ("float32", "float16", "float64", "int8", "uint8", "int32", "uint64")]


def assert_same(op: str, dtype: str, got, expected) -> None:
    assert_all_match(got, expected, SAMPLES[op].tolerance_for(dtype))


def test_samples_cover_declared_dtypes():
    for op in ("MatMul", "Gemm", "Einsum"):
        assert set(SAMPLES[op].dtypes) == set(registry.get(op).dtypes("T"))


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    assert_same(op, dtype, ours(op, s.inputs, s.attrs), onnx_run(op, s.inputs, s.attrs))


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_infer_matches_reference(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    (y,) = ours(op, s.inputs, s.attrs)
    assert infer(op, s.inputs, s.attrs) == [TensorType(dtype, y.shape)]


@pytest.mark.parametrize("dtype", ["float32", "float16", "int64", "uint32"])
@SETTINGS
@given(data=st.data())
def test_gemm_decomposition_matches_reference(dtype, data):
    s = data.draw(SAMPLES["Gemm"].strategy(dtype))
    assert_same("Gemm", dtype, decomposed("Gemm", s.inputs, s.attrs), ours("Gemm", s.inputs, s.attrs))


def test_matmul_vector_operands():
    a = np.arange(3, dtype=np.float32)
    b = np.arange(12, dtype=np.float32).reshape(2, 3, 2)
    assert ours("MatMul", [a, b])[0].shape == (2, 2)
    assert ours("MatMul", [b.transpose(0, 2, 1), a])[0].shape == (2, 2)
    assert ours("MatMul", [a, a])[0].shape == ()
    assert float(ours("MatMul", [a, a])[0]) == 5.0


def test_matmul_float16_accumulates_in_float32():
    a = np.full((1, 4096), 1.0, np.float16)
    b = np.full((4096, 1), 1.0, np.float16)
    (y,) = ours("MatMul", [a, b])
    assert y.dtype == np.float16 and float(y[0, 0]) == 4096.0


def _infer_types(op, types, attrs=None):
    opdef = registry.get(op)
    node = Node(op, [f"x{i}" for i in range(len(types))], ["y"], dict(attrs or {}))
    return opdef.infer(InferContext(node, types, opdef.full_attrs(node), [None] * len(types)))


def test_matmul_infer_symbolic_and_unknown():
    t = _infer_types("MatMul", [TensorType("float32", ("N", 1, 3, "K")), TensorType("float32", (5, "K", 7))])
    assert t == [TensorType("float32", ("N", 5, 3, 7))]
    assert _infer_types("MatMul", [TensorType("float32", None), TensorType("float32", (3, 4))]) == [
        TensorType("float32", None)]
    with pytest.raises(ShapeError):
        _infer_types("MatMul", [TensorType("float32", (2, 3)), TensorType("float32", (4, 5))])


def test_gemm_infer_checks_c_and_transposes():
    a, b = TensorType("float32", (4, "M")), TensorType("float32", (5, 4))
    assert _infer_types("Gemm", [a, b], {"transA": 1, "transB": 1}) == [TensorType("float32", ("M", 5))]
    with pytest.raises(ShapeError):
        _infer_types("Gemm", [TensorType("float32", (2, 3)), TensorType("float32", (3, 4)),
                              TensorType("float32", (3, 4))])


def test_gemm_decomposition_ops():
    a = np.ones((2, 3), np.float32)
    b = np.ones((4, 3), np.float32)
    c = np.ones((4,), np.float32)

    def ops_of(attrs, inputs):
        opdef = registry.get("Gemm")
        node = Node("Gemm", [f"x{i}" for i in range(len(inputs))], ["y"], attrs, name="g")
        types = [TensorType("float32", x.shape) for x in inputs]
        names = iter(range(100))
        d = Decomposer(node, types, opdef.full_attrs(node), [None] * len(inputs), lambda base: f"{base}{next(names)}")
        opdef.decompose(d)
        assert d.nodes[-1].outputs == ["y"]
        return [n.op for n in d.nodes]

    assert ops_of({"transB": 1}, [a, b]) == ["Transpose", "MatMul"]
    assert ops_of({"transB": 1, "alpha": 2.0, "beta": 3.0}, [a, b, c]) == ["Transpose", "Mul", "MatMul", "Mul", "Add"]
    assert ops_of({"transB": 1, "beta": 0.0}, [a, b, c]) == ["Transpose", "MatMul"]


def test_einsum_infer_ellipsis_and_implicit_output():
    t = _infer_types("Einsum", [TensorType("float32", ("B", 1, 2, 3)), TensorType("float32", (4, 3, 5))],
                     {"equation": "...ij,...jk"})
    assert t == [TensorType("float32", ("B", 4, 2, 5))]
    t = _infer_types("Einsum", [TensorType("int32", (3, 3))], {"equation": "ii"})
    assert t == [TensorType("int32", ())]
    with pytest.raises(ShapeError):
        _infer_types("Einsum", [TensorType("float32", (2, 3))], {"equation": "ijk->i"})
