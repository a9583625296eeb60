"""The OpenCL backend's movement ops and Cast against the op library's numpy references:
scalars, zero-size dims, negative axes and indices, index inputs given as initializers
(resolved at compile time) or at run time, and shape inputs computed on the host."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyopencl", reason="pyopencl is not installed")

from dh_core import Session
from dh_core import dtypes as dt
from dh_core.builder import GraphBuilder
from dh_core.ir import Node, TensorType
from tests.ops.oracle import ours
from tests.opencl.test_opencl_backend import BACKEND, SPECIAL, check, draw, run, run_outputs

DTYPES = ["float32", "float16", "int32", "int64", "bool"]


def agrees(op: str, inputs, attrs=None, index_inputs=(), outputs: int = 1) -> None:
    """The op agrees with the reference with its index inputs as initializers and as
    run-time inputs."""
    expected = ours(op, inputs, attrs, outputs)
    for constants in ({*index_inputs}, set()):
        actual = run_outputs(op, inputs, attrs, constants, n_outputs=outputs)
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            check(a, e)


def ints(*values) -> np.ndarray:
    return np.array(values, np.int64)


@pytest.mark.parametrize("dtype", DTYPES)
def test_transpose(dtype):
    for shape, perm in [((), None), ((5,), None), ((2, 3, 4), None), ((2, 3, 4), [1, 2, 0]),
                        ((0, 3, 2), [2, 0, 1]), ((1, 7), [1, 0]), ((2, 3, 4, 5), [3, 1, 0, 2])]:
        attrs = {} if perm is None else {"perm": perm}
        agrees("Transpose", [draw(dtype, shape)], attrs)


@pytest.mark.parametrize("dtype", DTYPES)
def test_slice(dtype):
    x = draw(dtype, (5, 6, 7))
    big = np.iinfo(np.int64).max
    cases = [(ints(1), ints(4), None, None), (ints(-1, 0), ints(-100, 6), ints(0, -1), ints(-1, 2)),
             (ints(0, 2), ints(big, -2), ints(2, 1), None), (ints(4), ints(0), ints(-3), ints(-2)),
             (ints(3), ints(3), ints(1), None), (ints(-big), ints(big), ints(2), ints(3))]
    for starts, ends, axes, steps in cases:
        agrees("Slice", [x, starts, ends, axes, steps], index_inputs={1, 2, 3, 4})
    small = np.array([[1, 2, 3]], np.int32)
    agrees("Slice", [draw(dtype, (0, 4)), small[0, :1], small[0, 2:], None, None], index_inputs={1, 2})


@pytest.mark.parametrize("dtype", DTYPES)
def test_concat_and_split(dtype):
    parts = [draw(dtype, (2, n, 3)) for n in (1, 0, 4)]
    for axis in (1, -2):
        agrees("Concat", parts, {"axis": axis})
    agrees("Concat", [draw(dtype, (3,))], {"axis": 0})
    x = draw(dtype, (4, 7))
    agrees("Split", [x, ints(2, 0, 5)], {"axis": 1}, index_inputs={1}, outputs=3)
    agrees("Split", [x], {"axis": -1, "num_outputs": 3}, outputs=3)
    agrees("Split", [x, ints(3, 1)], {"axis": 0}, index_inputs={1}, outputs=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gather(dtype):
    x = draw(dtype, (4, 5, 3))
    for axis, indices in [(0, ints(0, -1, 2)), (1, np.array([[4, -5], [0, 1]], np.int32)), (-1, ints(2)),
                          (2, np.array(-3, np.int64)), (1, np.zeros((0,), np.int64))]:
        agrees("Gather", [x, indices], {"axis": axis})
    agrees("Gather", [draw(dtype, (0, 3)), ints(1, -1)], {"axis": 1})


def test_gather_out_of_range_index_stays_inside_the_data():
    x = np.arange(12, dtype=np.int64).reshape(3, 4)
    check(run_outputs("Gather", [x, ints(7, -9, 1)], {"axis": 0})[0], x[[2, 0, 1]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["constant", "edge", "reflect", "wrap"])
def test_pad(dtype, mode):
    x = draw(dtype, (3, 4))
    for pads, axes in [(ints(1, 2, 0, 3), None), (ints(0, -1, 2, 1), None), (ints(2, 5), ints(-1)),
                       (ints(0, 0, 0, 0), None)]:
        agrees("Pad", [x, pads, None, axes], {"mode": mode}, index_inputs={1, 3})
    if mode == "constant":
        value = draw(dtype, ())
        agrees("Pad", [x, ints(1, 0, 2, 1), value], {"mode": mode}, index_inputs={1})
        agrees("Pad", [draw(dtype, (0, 2)), ints(1, 1, 0, 0)], {"mode": mode}, index_inputs={1})


@pytest.mark.parametrize("dtype", DTYPES)
def test_expand_and_tile(dtype):
    for shape, target in [((3, 1), ints(2, 3, 4)), ((), ints(2, 2)), ((1,), ints(0)), ((2, 1, 3), ints(1, 1))]:
        agrees("Expand", [draw(dtype, shape), target], index_inputs={1})
    for shape, repeats in [((2, 3), ints(2, 3)), ((3,), ints(0)), ((1, 2, 2), ints(3, 1, 2))]:
        agrees("Tile", [draw(dtype, shape), repeats], index_inputs={1})


@pytest.mark.parametrize("dtype", DTYPES)
def test_reshaping_views(dtype):
    x = draw(dtype, (2, 3, 4))
    for shape, allowzero in [(ints(4, -1), 0), (ints(0, 12), 0), (ints(24), 0), (ints(2, 1, 12), 1)]:
        agrees("Reshape", [x, shape], {"allowzero": allowzero}, index_inputs={1})
    agrees("Reshape", [draw(dtype, (0, 3)), ints(3, 0)], {"allowzero": 1}, index_inputs={1})
    for axis in (0, 2, -1, 3):
        agrees("Flatten", [x], {"axis": axis})
    ones = draw(dtype, (1, 3, 1, 1))
    agrees("Squeeze", [ones], {})
    agrees("Squeeze", [ones, ints(-1, 0)], index_inputs={1})
    agrees("Unsqueeze", [draw(dtype, ()), ints(0, -1)], index_inputs={1})
    agrees("Unsqueeze", [x, ints(1, 4)], index_inputs={1})
    agrees("Identity", [x])


def test_float16_bits_survive_movement():
    x = SPECIAL["float16"].reshape(2, 7)  # nan, inf, -0, subnormals
    assert run("Transpose", [x]).tobytes() == x.T.tobytes()
    assert run("Concat", [x, x[:, ::-1].copy()], {"axis": 1}).tobytes() == np.concatenate([x, x[:, ::-1]], 1).tobytes()


@pytest.mark.parametrize("value", [None, np.array([1.5], np.float32), np.array([-7], np.int32),
                                   np.array([6e-8], np.float16),
                                   np.array([3], np.int64), np.array([True])])
def test_constant_of_shape(value):
    attrs = {} if value is None else {"value": value}
    for shape in [ints(), ints(3), ints(2, 0, 4), ints(2, 3, 5)]:
        agrees("ConstantOfShape", [shape], attrs, index_inputs=[0])


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_dropout_in_inference_is_the_input(dtype):
    x = draw(dtype, (3, 4))
    agrees("Dropout", [x])
    agrees("Dropout", [x, np.array(0.3, dtype)], index_inputs={1})

    def supports(inputs, outputs):
        node = Node("Dropout", inputs, outputs, {})
        return BACKEND.supports(node, [TensorType("float32", (3,)) if n == "x" else TensorType(
            "float32", ()) if n == "r" else TensorType("bool", ()) for n in inputs if n])

    assert supports(["x"], ["y"]) and supports(["x", "r"], ["y", ""])
    assert not supports(["x"], ["y", "mask"])
    assert not supports(["x", "r", "t"], ["y"])


@pytest.mark.parametrize("source", DTYPES)
@pytest.mark.parametrize("target", DTYPES)
def test_cast(source, target):
    specials = np.array([np.nan, np.inf, -np.inf, 3e9, -3e9, 2.5, -2.5, -0.0, 1e19, 16777217.0, 65520.0,
                         2049.0, 2051.0, 1e-8, 6e-8], np.float32)
    values = [draw(source, (3, 5)), draw(source, ()), draw(source, (0, 2))]
    if source == "float32":
        values.append(specials)
    if source == "float16":
        values.append(specials.astype(np.float16))
    if source == "int64":
        values.append(ints(2**40 + 7, -(2**35), 2**31, 16777217))
    with np.errstate(invalid="ignore"):
        for x in values:
            agrees("Cast", [x], {"to": dt.onnx_code(target)})


def record_reads(monkeypatch) -> list[tuple[int, ...]]:
    """The shapes of the device arrays read back to the host from now on."""
    import pyopencl.array as cl_array

    reads: list[tuple[int, ...]] = []
    original_get = cl_array.Array.get
    monkeypatch.setattr(cl_array.Array, "get", lambda self, *a, **k: reads.append(self.shape)
                        or original_get(self, *a, **k))
    return reads


def test_host_computed_shape_reaches_reshape_without_a_read_back(monkeypatch):
    """Shape -> Gather -> Concat runs on the host; Reshape on the device takes the
    shape from the host copy that came with the upload, never reading the device."""
    b = GraphBuilder("flatten_batch")
    x = b.input("x", "float32", ("N", 3, 4))
    batch = b.Gather(b.Shape(x), b.constant(ints(0), "zero"), axis=0)
    shape = b.Concat(batch, b.constant(ints(-1), "minus_one"), axis=0)
    b.output(b.Reshape(b.Relu(x), shape, outputs=["y"]))
    sess = Session(b.build(), backends=["opencl", "cpu"])
    placement = {n.op: p.backend.name for p in sess.plan.partitions for n in p.nodes}
    assert placement["Reshape"] == "opencl" and placement["Shape"] == "cpu"
    reads = record_reads(monkeypatch)
    value = draw("float32", (5, 3, 4))
    (y,) = sess.run({"x": value})
    check(y, np.maximum(value, 0).reshape(5, 12))
    assert reads == [(5, 12)]  # only the graph output comes back


def test_initializer_index_inputs_resolve_at_compile_time(monkeypatch):
    from dh_backend_opencl import movement

    def no_run_time_read(buf):
        raise AssertionError("an initializer index input was read at run time")

    monkeypatch.setattr(movement, "host_values", no_run_time_read)
    x = draw("int64", (4, 6))
    check(run_outputs("Slice", [x, ints(1), ints(-1), ints(1)], constants={1, 2, 3})[0], x[:, 1:-1])
    check(run_outputs("Reshape", [x, ints(-1)], constants={1})[0], x.reshape(-1))


def test_supports_is_exact_for_movement():
    def supports(op, *types, **attrs):
        node = Node(op, [f"x{i}" for i in range(len(types))], ["y"], attrs)
        return BACKEND.supports(node, list(types))

    f32, f64, i64 = TensorType("float32", (2, 3)), TensorType("float64", (2, 3)), TensorType("int64", (2,))
    assert supports("Transpose", f32) and not supports("Transpose", f64)
    assert supports("Reshape", f32, i64) and not supports("Reshape", TensorType("uint8", (6,)), i64)
    assert supports("Pad", f32, i64, mode="reflect") and not supports("Pad", f32, i64, mode="mirror")
    assert not supports("Gather", f32, TensorType("float32", (2,)))
    assert not supports("Concat", f32, TensorType("int32", (2, 3)), axis=0)
    assert supports("Cast", f32, to=dt.onnx_code("float16")) and not supports("Cast", f32, to=dt.onnx_code("float64"))


def test_host_computed_index_inputs_of_slice_expand_and_pad(monkeypatch):
    """Slice ends, an Expand shape and Pad pads computed from Shape on the host run on
    the device, agree with the CPU backend and are not read back from the device."""
    def graph():
        b = GraphBuilder("host_indices")
        x = b.input("x", "float32", ("N", 6))
        shape = b.Shape(x)
        half = b.Div(b.Gather(shape, b.constant(ints(1), "one")), b.constant(ints(2), "two"))
        sliced = b.Slice(b.Relu(x), b.constant(ints(0), "zero"), half, b.constant(ints(1), "axis"))
        expanded = b.Expand(b.Unsqueeze(sliced, b.constant(ints(0), "front")), b.Concat(
            b.constant(ints(2), "copies"), b.Constant(value=ints(1, 1)), axis=0))
        pads = b.Concat(b.constant(ints(0, 0), "no_pad"), half, b.constant(ints(0), "end"), axis=0)
        b.output(b.Pad(sliced, pads, mode="reflect", outputs=["padded"]), b.Identity(expanded, outputs=["expanded"]))
        return b.build()

    value = draw("float32", (4, 6))
    mixed = Session(graph(), backends=["opencl", "cpu"])
    placement = {n.op: p.backend.name for p in mixed.plan.partitions for n in p.nodes}
    assert all(placement[op] == "opencl" for op in ("Slice", "Expand", "Pad", "Unsqueeze"))
    expected = Session(graph(), backends=["cpu"]).run({"x": value})
    reads = record_reads(monkeypatch)
    actual = mixed.run({"x": value})
    for a, e in zip(actual, expected):
        check(a, e)
    assert sorted(reads) == sorted(e.shape for e in expected)  # only the graph outputs come back
