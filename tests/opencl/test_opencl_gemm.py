"""The OpenCL GEMM (packed, register-blocked) against the op library's references:
MatMul with ONNX broadcasting (1-D operands, batch dims), Gemm with transposes, alpha,
beta and a broadcast C, odd sizes around the block edges and zero-size dims."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyopencl", reason="pyopencl is not installed")
pytest.importorskip("dh_backend_opencl", reason="dh-backend-opencl is not installed")

from dh_backend_opencl import gemm as gemm_module
from dh_backend_opencl.gemm import IN_PLACE_B_ROWS, MR, NR, MatMulPlan

from dh_core import Session
from dh_core.builder import GraphBuilder
from dh_core.errors import ShapeError
from tests.ops.oracle import ours
from tests.opencl.test_opencl_backend import BACKEND, DEVICE, run

ODD = (1, 7, 17, 33, 65)
RNG = np.random.default_rng(7)  # its own stream: draws elsewhere do not shift with these tests


def draw(dtype: str, shape) -> np.ndarray:
    return RNG.normal(0, 2, shape).astype(dtype)


def assert_close(actual, expected, magnitude) -> None:
    """float32 sums in another order: the error bound scales with sum |a||b| (plus |beta C|)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    assert np.all(np.abs(actual - expected) <= 1e-5 * magnitude + 1e-6)


def check_matmul(a_shape, b_shape) -> None:
    a, b = draw("float32", a_shape), draw("float32", b_shape)
    assert_close(run("MatMul", [a, b]), ours("MatMul", [a, b])[0], np.abs(a) @ np.abs(b))


@pytest.mark.parametrize("m", ODD)
@pytest.mark.parametrize("k", (0, 1, 17, 65))
@pytest.mark.parametrize("n", ODD)
def test_matmul_odd_sizes(m, k, n):
    check_matmul((m, k), (k, n))


@pytest.mark.parametrize("m,k,n", [(0, 5, 3), (4, 5, 0), (2 * MR + 1, 3, 3 * NR - 1), (129, 100, 70)])
def test_matmul_block_edges_and_empty(m, k, n):
    check_matmul((m, k), (k, n))


@pytest.mark.parametrize("a_shape,b_shape,in_place", [
    ((1, 1), (1, 16), True), ((7, 17), (17, 48), True), ((33, 65), (65, 64), True),
    ((IN_PLACE_B_ROWS, 9), (9, 96), True), ((IN_PLACE_B_ROWS + 1, 9), (9, 96), False),
    ((3, 7, 20), (3, 20, 48), True), ((2, 1, 5, 17), (3, 17, 32), True), ((17,), (2, 17, 16), True),
])
def test_matmul_b_in_place_or_packed(a_shape, b_shape, in_place):
    """Row-major B with N a multiple of 16 under few rows of A is read without packing."""
    rt = BACKEND.runtime(DEVICE)
    m, n = (a_shape[-2] if len(a_shape) > 1 else 1), b_shape[-1]
    assert gemm_module._b_in_place(rt, np.zeros(1, np.int64), (n, 1), m, n) == in_place
    check_matmul(a_shape, b_shape)


@pytest.mark.parametrize("a_shape,b_shape", [
    ((5,), (5, 4)), ((3, 5), (5,)), ((5,), (5,)), ((2, 3, 5), (5,)), ((5,), (2, 5, 3)),
    ((2, 3, 5), (5, 4)), ((2, 3, 5), (2, 5, 7)), ((1, 3, 5), (4, 5, 7)), ((4, 3, 5), (1, 5, 7)),
    ((3, 5), (2, 5, 9)), ((2, 1, 3, 5), (4, 5, 33)), ((4, 17), (3, 1, 17, 33)),
    ((0, 3, 5), (5, 2)), ((2, 0, 5), (2, 5, 3)), ((2, 3, 0), (2, 0, 4)), ((0, 3, 5), (1, 5, 2)),
])
def test_batched_matmul_broadcasts_like_numpy(a_shape, b_shape):
    check_matmul(a_shape, b_shape)


def test_matmul_plan_rejects_mismatched_inner_dims():
    with pytest.raises(ShapeError):
        MatMulPlan.of((2, 3), (4, 5), (3, 1), (5, 1))
    with pytest.raises(ShapeError):
        MatMulPlan.of((2, 3, 4), (3, 4, 5), (12, 4, 1), (20, 5, 1))


@pytest.mark.parametrize("trans_a,trans_b", [(0, 0), (1, 0), (0, 1), (1, 1)])
@pytest.mark.parametrize("c_shape", [None, (), (1,), "n", "m1", "mn"])
@pytest.mark.parametrize("m,k,n", [(1, 7, 1), (33, 17, 65), (7, 0, 5), (7, 9, 48)])
def test_gemm_transposes_and_broadcast_c(trans_a, trans_b, c_shape, m, k, n):
    a = draw("float32", (k, m) if trans_a else (m, k))
    b = draw("float32", (n, k) if trans_b else (k, n))
    shapes = {"n": (n,), "m1": (m, 1), "mn": (m, n)}
    inputs = [a, b] + ([] if c_shape is None else [draw("float32", shapes.get(c_shape, c_shape))])
    attrs = {"transA": trans_a, "transB": trans_b, "alpha": -1.5, "beta": 0.25}
    magnitude = 1.5 * np.abs(a.T if trans_a else a) @ np.abs(b.T if trans_b else b)
    if c_shape is not None:
        magnitude = magnitude + 0.25 * np.abs(inputs[2])
    assert_close(run("Gemm", inputs, attrs), ours("Gemm", inputs, attrs)[0], magnitude)


def test_strided_gemm_entry_point():
    """gemm_module.gemm reads A and B through element strides (here A stored transposed)."""
    rt = BACKEND.runtime(DEVICE)
    m, k, n = 19, 40, 37
    a_t, b, c = draw("float32", (k, m)), draw("float32", (k, n)), draw("float32", (n,))
    y = gemm_module.gemm(rt, rt.upload(a_t), rt.upload(b), (1, m), (n, 1), m, k, n, 2.0, -1.0, rt.upload(c))
    assert_close(y.get(), 2.0 * a_t.T @ b - c, 2.0 * np.abs(a_t.T) @ np.abs(b) + np.abs(c))


def test_batched_matmul_session_stays_on_the_device():
    rng = np.random.default_rng(3)
    b = GraphBuilder("attention_like")
    q = b.input("q", "float32", (2, 4, 9, 16))
    k = b.input("k", "float32", (2, 4, 16, 9))
    w = b.constant(rng.normal(size=(9, 5)).astype(np.float32), "w")
    b.output(b.Relu(b.MatMul(b.MatMul(q, k), w)))
    graph = b.build()
    sess = Session(graph, backends=["opencl", "cpu"], fallback="error")
    assert [p.backend.name for p in sess.plan.partitions] == ["opencl"]
    feeds = {"q": draw("float32", (2, 4, 9, 16)), "k": draw("float32", (2, 4, 16, 9))}
    expected = Session(graph, backends=["cpu"]).run(feeds)[0]
    np.testing.assert_allclose(sess.run(feeds)[0], expected, rtol=1e-4, atol=1e-4)


VIEWS = {  # name: (stored shape for a logical (rows, cols), the view; numpy and pyopencl alike)
    "plain": (lambda r, c: (r, c), lambda x: x),
    "transposed": (lambda r, c: (c, r), lambda x: x.transpose()),
    "every_other_column": (lambda r, c: (r, 2 * c), lambda x: x[:, ::2]),
    "batch_transposed": (lambda r, c: (3, c, r), lambda x: x.transpose((0, 2, 1))),
}


@pytest.mark.parametrize("a_view,b_view", [
    ("transposed", "plain"), ("plain", "every_other_column"), ("batch_transposed", "batch_transposed"),
    ("batch_transposed", "plain"), ("every_other_column", "batch_transposed"),
])
def test_matmul_reads_strided_views(a_view, b_view):
    """Device views (a transpose, a stepped slice) are read through their own strides."""
    rt = BACKEND.runtime(DEVICE)
    (a_stored, a_of), (b_stored, b_of) = VIEWS[a_view], VIEWS[b_view]
    a, b = draw("float32", a_stored(9, 20)), draw("float32", b_stored(20, 35))
    actual = gemm_module.matmul_factory(rt)(a_of(rt.upload(a)), b_of(rt.upload(b))).get()
    a, b = a_of(a), b_of(b)
    assert_close(actual, ours("MatMul", [a, b])[0], np.abs(a) @ np.abs(b))
