"""The OpenCL backend's indexing ops against the op library's numpy references:
negative axes and indices, zero-size dims, every scatter reduction with repeated
indices, and index inputs given as initializers (read at compile time) or at run time."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyopencl", reason="pyopencl is not installed")

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType
from tests.opencl.test_opencl_backend import BACKEND, check, draw, run_outputs
from tests.opencl.test_opencl_movement import agrees, ints

DTYPES = ["float32", "int32", "int64", "bool"]
COPY_DTYPES = DTYPES + ["float16"]
REDUCTIONS = ["none", "add", "mul", "max", "min"]


def i32(*values) -> np.ndarray:
    return np.array(values, np.int32)


@pytest.mark.parametrize("dtype", COPY_DTYPES)
def test_gather_elements(dtype):
    x = draw(dtype, (3, 4, 5))
    cases = [(0, np.array([[[0, -1, 2, -3, 1]] * 4] * 2, np.int64)),
             (-2, i32(3, -4, 0, 1, 2).reshape(1, 5, 1).repeat(2, 0)),
             (2, np.array([-5, 4, 0], np.int64).reshape(1, 1, 3)),
             (1, np.zeros((3, 0, 5), np.int64))]
    for axis, indices in cases:
        agrees("GatherElements", [x, indices], {"axis": axis})
    agrees("GatherElements", [draw(dtype, (4,)), ints(-1, 0, 3, 3, -4)], {"axis": 0})


@pytest.mark.parametrize("dtype", COPY_DTYPES)
def test_gather_nd(dtype):
    x = draw(dtype, (2, 3, 4))
    cases = [(0, ints(1, -1).reshape(1, 2)), (0, ints(0, 2, 3, -1, -3, -4).reshape(2, 3)),
             (0, ints(-2, 1, 0).reshape(3, 1)), (1, ints(2, -1, 0, 1).reshape(2, 1, 2)),
             (2, ints(3, -1, 0, 1, 2, -4).reshape(2, 3, 1)), (1, np.zeros((2, 0, 1), np.int64))]
    for batch_dims, indices in cases:
        agrees("GatherND", [x, indices], {"batch_dims": batch_dims})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_elements_combines_repeated_indices_in_order(dtype, reduction):
    x = draw(dtype, (3, 4))
    attrs = {"reduction": reduction}
    agrees("ScatterElements", [x, np.array([[1, -3, 1], [0, 0, -1]], np.int64), draw(dtype, (2, 3))],
           {"axis": 1, **attrs})
    agrees("ScatterElements", [x, i32(2, -1, 0, 2).reshape(4, 1), draw(dtype, (4, 1))], {"axis": -2, **attrs})
    agrees("ScatterElements", [x, np.zeros((0, 4), np.int64), draw(dtype, (0, 4))], {"axis": 0, **attrs})


def test_scatter_elements_float16_copies_without_reduction():
    x = draw("float16", (2, 5))
    agrees("ScatterElements", [x, ints(4, -1, 0).reshape(1, 3), draw("float16", (1, 3))], {"axis": 1})


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_nd_combines_repeated_rows_in_order(dtype, reduction):
    x = draw(dtype, (3, 4, 2))
    attrs = {"reduction": reduction}
    agrees("ScatterND", [x, ints(1, -2, 0).reshape(3, 1), draw(dtype, (3, 4, 2))], attrs)
    agrees("ScatterND", [x, ints(2, 3, -1, -1, 0, 0).reshape(3, 2), draw(dtype, (3, 2))], attrs)
    agrees("ScatterND", [x, ints(0, 1, 1, 0, 1, 1).reshape(2, 1, 3), draw(dtype, (2, 1))], attrs)
    agrees("ScatterND", [x, np.zeros((0, 2), np.int64), draw(dtype, (0, 2))], attrs)


def test_scatter_max_and_min_propagate_nan():
    x = np.array([1.0, np.nan, 3.0], np.float32)
    updates = np.array([np.nan, 2.0, 5.0, -1.0], np.float32)
    for reduction in ("max", "min"):
        agrees("ScatterElements", [x, ints(0, 1, 2, 2), updates], {"axis": 0, "reduction": reduction})
        agrees("ScatterND", [x, ints(0, 1, 2, 2).reshape(4, 1), updates], {"reduction": reduction})


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_cumsum(dtype):
    x = draw(dtype, (3, 4, 5))
    for axis in (0, -1, 1):
        for exclusive in (0, 1):
            for reverse in (0, 1):
                attrs = {"exclusive": exclusive, "reverse": reverse}
                agrees("CumSum", [x, np.array(axis, np.int64)], attrs, index_inputs={1})
    agrees("CumSum", [draw(dtype, (0, 3)), np.array(-1, np.int32)], {}, index_inputs={1})
    agrees("CumSum", [draw(dtype, (2, 0)), np.array(1, np.int32)], {"exclusive": 1}, index_inputs={1})


def test_cumsum_wraps_integers():
    agrees("CumSum", [i32(2**31 - 1, 1, 5), np.array(0, np.int64)], {}, index_inputs={1})


@pytest.mark.parametrize("dtype", COPY_DTYPES)
def test_trilu(dtype):
    x = draw(dtype, (2, 4, 5))
    for upper in (0, 1):
        agrees("Trilu", [x], {"upper": upper})
        for k in (0, 2, -1, -7, 9):
            agrees("Trilu", [x, np.array(k, np.int64)], {"upper": upper}, index_inputs={1})
        agrees("Trilu", [draw(dtype, (3, 0, 2))], {"upper": upper})


@pytest.mark.parametrize("dtype", COPY_DTYPES)
def test_eye_like(dtype):
    for shape in ((3, 3), (2, 5), (4, 1), (0, 3)):
        for k in (0, 1, -2, 6):
            agrees("EyeLike", [draw(dtype, shape)], {"k": k})
            for out in COPY_DTYPES:
                agrees("EyeLike", [draw(dtype, shape)], {"k": k, "dtype": dt.onnx_code(out)})


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_range(dtype):
    cases = [(0, 10, 3), (5, -4, -2), (2, 2, 1), (3, 1, 1), (-7, 7, 7)]
    if dtype == "float32":
        cases += [(0.5, 3.25, 0.25), (1.5, -2.0, -0.75)]
    for start, limit, delta in cases:
        inputs = [np.array(v, dtype) for v in (start, limit, delta)]
        agrees("Range", inputs, index_inputs={0, 1, 2})


@pytest.mark.parametrize("values_dtype", COPY_DTYPES + ["uint8", "float64"])
def test_one_hot(values_dtype):
    values = draw(values_dtype, (2,))
    indices = np.array([[0, -1, 3], [2, -4, 1]], np.int64)
    for axis in (-1, 0, 1, -3):
        agrees("OneHot", [indices, np.array(4, np.int64), values], {"axis": axis}, index_inputs={1})
    agrees("OneHot", [np.array([1, 2, -1], np.int32), np.array(3.9, np.float32), values], {}, index_inputs={1})
    agrees("OneHot", [np.array([1.7, -1.2, 5.0, np.nan], np.float32), np.array(3, np.int8), values], {},
           index_inputs={1})
    agrees("OneHot", [np.array(2, np.int64), np.array(3, np.int64), values], {}, index_inputs={1})
    agrees("OneHot", [np.zeros((0, 2), np.uint8), np.array(3, np.int64), values], {"axis": 1}, index_inputs={1})


@pytest.mark.parametrize("dtype", ["float32", "int32", "int64"])
def test_top_k_sorts_ties_by_lower_index(dtype):
    x = np.array([[3, 1, 3, -2, 1, 5], [0, 0, 0, 0, 0, 0], [-1, 4, 2, 4, -1, 2]], dtype)
    for axis, k in [(-1, 3), (1, 6), (0, 2), (1, 0), (-2, 3)]:
        for largest in (0, 1):
            agrees("TopK", [x, ints(k)], {"axis": axis, "largest": largest, "sorted": largest}, index_inputs={1},
                   outputs=2)
    agrees("TopK", [draw(dtype, (2, 7, 3)), ints(4)], {"axis": 1}, index_inputs={1}, outputs=2)
    ties = np.round(draw("float32", (3, 40, 2))).astype(dtype)  # long lines, small K: one pick at a time
    for k in (1, 5):
        for largest in (0, 1):
            agrees("TopK", [ties, ints(k)], {"axis": 1, "largest": largest}, index_inputs={1}, outputs=2)
    agrees("TopK", [draw(dtype, (0, 4)), ints(2)], {}, index_inputs={1}, outputs=2)


def test_top_k_puts_nan_first_when_largest_and_last_when_smallest():
    x = np.tile(np.array([1.0, np.nan, -np.inf, 2.0, np.nan, np.inf, 2.0], np.float32), 3)
    for largest in (0, 1):
        for k in (2, 21):
            agrees("TopK", [x, ints(k)], {"largest": largest}, index_inputs={1}, outputs=2)


def test_out_of_range_indices_are_clamped_on_the_device():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    got = run_outputs("GatherElements", [x, ints(9, -9, 1, 2).reshape(1, 4)], {"axis": 0})[0]
    check(got, x[[2, 0, 1, 2], [0, 1, 2, 3]].reshape(1, 4))
    got = run_outputs("GatherND", [x, ints(5, -9).reshape(1, 2)])[0]
    check(got, x[2:, 0])
    got = run_outputs("ScatterND", [x, ints(-7).reshape(1, 1), np.full((1, 4), -1, np.int64)])[0]
    check(got, np.concatenate([np.full((1, 4), -1), x[1:]]))


def test_bad_shapes_raise_shape_errors():
    x = draw("float32", (3, 4))
    with pytest.raises(ShapeError, match="do not fit"):
        run_outputs("GatherElements", [x, ints(0, 1).reshape(1, 1, 2)], {"axis": 0})
    with pytest.raises(ShapeError, match="do not fit"):
        run_outputs("GatherElements", [x, np.zeros((1, 5), np.int64)], {"axis": 0})
    with pytest.raises(ShapeError, match="differ in shape"):
        run_outputs("ScatterElements", [x, np.zeros((1, 2), np.int64), draw("float32", (2, 1))], {"axis": 0})
    with pytest.raises(ShapeError, match="do not fit"):
        run_outputs("ScatterND", [x, ints(0, 1).reshape(2, 1), draw("float32", (2, 3))])
    with pytest.raises(ShapeError, match="outside"):
        run_outputs("TopK", [x, ints(5)], n_outputs=2)
    with pytest.raises(ShapeError, match="delta cannot be 0"):
        run_outputs("Range", [np.array(v, np.int64) for v in (0, 5, 0)])


def _supported(op: str, types, attrs=None) -> bool:
    node = Node(op, [f"x{i}" for i in range(len(types))], ["y"], attrs or {})
    return BACKEND.supports(node, types)


def test_supports_is_exact():
    f16, f32, i64, i32t = (TensorType(d, (2, 3)) for d in ("float16", "float32", "int64", "int32"))
    f64 = TensorType("float64", (2, 3))
    assert _supported("ScatterElements", [f16, i64, f16])
    assert not _supported("ScatterElements", [f16, i64, f16], {"reduction": "mul"})
    assert not _supported("ScatterND", [f32, i64, f32], {"reduction": "sum"})
    assert not _supported("GatherND", [f32, i32t])
    assert not _supported("GatherElements", [f64, i64])
    assert not _supported("CumSum", [f16, TensorType("int64", ())])
    assert not _supported("Range", [TensorType(d, ()) for d in ("float32", "float32", "int64")])
    assert not _supported("EyeLike", [f32], {"dtype": dt.onnx_code("float64")})
    assert not _supported("Trilu", [TensorType("float32", (3,))])
