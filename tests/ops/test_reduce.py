"""Reductions, ArgMax/ArgMin, CumSum, CumProd and TopK: our references against onnx.reference,
type inference against the actual outputs, decompositions against the references."""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from dh_core.conformance.samples import Sample, all_samples
from dh_core.ops import registry
from dh_core.ops.base import Decomposer, InferContext
from dh_core.ops.reduce import reduce_axes
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dh_core.ir import Node, TensorType

from .oracle import assert_matches, decomposed, draw_sample, infer, onnx_run, ours

OPS = """ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceSumSquare
ReduceLogSum ReduceLogSumExp ArgMax ArgMin CumSum CumProd TopK""".split()
CORE = set("ReduceSum ReduceMax ReduceMin ReduceProd ArgMax ArgMin CumSum CumProd TopK".split())

SAMPLES = all_samples()
CASES = [(op, dtype) for op in OPS for dtype in SAMPLES[op].dtypes]
COMPOSITE_CASES = [(op, dtype) for op, dtype in CASES if op not in CORE]
ORACLE_GAPS = {  # (op, dtype) -> why onnx.reference cannot judge the case
    ("ReduceSumSquare", "int32"): "onnx.reference sums int32 squares into int64 (numpy promotion)",
    ("ReduceSumSquare", "uint32"): "onnx.reference sums uint32 squares into uint64 (numpy promotion)",
}
ORACLE_CASES = [pytest.param(op, dtype, marks=pytest.mark.skip(reason=ORACLE_GAPS[op, dtype]))
                if (op, dtype) in ORACLE_GAPS else (op, dtype) for op, dtype in CASES]
EXAMPLES = settings(max_examples=20, deadline=None)


def n_outputs(op: str) -> int:
    return 2 if op == "TopK" else 1


def oracle_blind_spots(op: str, sample: Sample) -> np.ndarray | None:
    """Output positions where onnx.reference is wrong, or None when it is right everywhere.

    Its ReduceLogSumExp subtracts the maximum over the finite values only, so a slice of
    nothing but infinities gives nan (inf - inf) instead of -inf or inf."""
    x = sample.inputs[0]
    if op != "ReduceLogSumExp" or x.size == 0:
        return None
    axes = reduce_axes(x.ndim, sample.inputs[1] if len(sample.inputs) > 1 else None,
                       sample.attrs["noop_with_empty_axes"])
    return np.logical_and.reduce(np.isinf(x), axis=axes, keepdims=bool(sample.attrs["keepdims"]))


def test_every_op_is_registered_with_samples_and_tier():
    for op in OPS:
        opdef = registry.get(op)
        assert opdef.composite == (op not in CORE), op
        assert set(SAMPLES[op].dtypes) == set(opdef.dtypes(opdef.inputs[0].type)), op


@pytest.mark.parametrize(("op", "dtype"), ORACLE_CASES)
@EXAMPLES
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    sample = draw_sample(data, op, dtype)
    # onnx.reference's ReduceLogSumExp returns a numpy scalar for rank-0 data and fails.
    assume(not (op == "ReduceLogSumExp" and sample.inputs[0].ndim == 0))
    n = n_outputs(op)
    wants = onnx_run(op, sample.inputs, sample.attrs, n)
    gots = ours(op, sample.inputs, sample.attrs, n)
    blind = oracle_blind_spots(op, sample)
    for got, want in zip(gots, wants):
        if blind is not None:
            assert got.shape == want.shape
            got, want = got[~blind], want[~blind]
        assert_matches(got, want, SAMPLES[op].tolerance_for(dtype))


@pytest.mark.parametrize(("op", "dtype"), CASES)
@EXAMPLES
@given(data=st.data())
def test_infer_gives_output_type(op, dtype, data):
    """Exact with constant axes/K/axis inputs; with run-time ones, no dim contradicts."""
    sample = draw_sample(data, op, dtype)
    n = n_outputs(op)
    gots = ours(op, sample.inputs, sample.attrs, n)
    exact = [TensorType(g.dtype.name, g.shape) for g in gots]
    constants = tuple(range(1, len(sample.inputs)))
    assert infer(op, sample.inputs, sample.attrs, n, constant_inputs=constants) == exact
    for t, g in zip(infer(op, sample.inputs, sample.attrs, n), gots):
        assert t.dtype == g.dtype.name
        if t.shape is not None:
            assert len(t.shape) == g.ndim
            assert all(d is None or d == actual for d, actual in zip(t.shape, g.shape))


@pytest.mark.parametrize(("op", "dtype"), COMPOSITE_CASES)
@EXAMPLES
@given(data=st.data(), constant_axes=st.booleans())
def test_decomposition_matches_reference(op, dtype, data, constant_axes):
    sample = draw_sample(data, op, dtype)
    (want,) = ours(op, sample.inputs, sample.attrs)
    (got,) = decomposed(op, sample.inputs, sample.attrs, constant_inputs=(1,) if constant_axes else ())
    assert_matches(got, want, SAMPLES[op].tolerance_for(dtype))


def test_decompositions_use_only_core_ops():
    core_ops = CORE | {"Abs", "Mul", "Div", "Sqrt", "Log", "Exp", "Sub", "Add", "Less", "Not",
                       "Where", "Cast"}
    x = np.zeros((2, 3), np.int32)
    for op in sorted(set(OPS) - CORE):
        dtype = np.float32 if op in ("ReduceLogSum", "ReduceLogSumExp") else np.int32
        for axes in ([], [np.array([1], np.int64)]):
            for constant in ((), (1,)):
                for keepdims in (0, 1):
                    inputs = [x.astype(dtype), *axes]
                    attrs = {"keepdims": keepdims}
                    want = ours(op, inputs, attrs)[0]
                    got = decomposed(op, inputs, attrs, constant_inputs=constant)[0]
                    assert_matches(got, want, (1e-6, 1e-6))
        d_ops = _decomposition_ops(op, dtype)
        assert d_ops <= core_ops, f"{op} uses {sorted(d_ops - core_ops)}"


def _decomposition_ops(op: str, dtype) -> set[str]:
    opdef = registry.get(op)
    node = Node(op, ["x", "axes"], ["y"], {}, name=op)
    types = [TensorType(np.dtype(dtype).name, (2, 3)), TensorType("int64", (1,))]
    counter = itertools.count()
    d = Decomposer(node, types, opdef.full_attrs(node), [None, None], lambda b: f"{b}_{next(counter)}")
    opdef.decompose(d)
    assert d.nodes[-1].outputs == ["y"]
    return {n.op for n in d.nodes}


# -- semantics worth pinning down exactly ---------------------------------------
def run(op, *inputs, **attrs):
    return ours(op, list(inputs), attrs, n_outputs(op))


def test_empty_reductions_give_identities():
    empty = {"float32": np.zeros((0, 2), np.float32), "int32": np.zeros((0, 2), np.int32),
             "bool": np.zeros((0, 2), bool)}
    axis0 = np.array([0], np.int64)
    cases = [("ReduceSum", "float32", 0), ("ReduceProd", "float32", 1), ("ReduceMax", "float32", -np.inf),
             ("ReduceMin", "float32", np.inf), ("ReduceMax", "int32", np.iinfo(np.int32).min),
             ("ReduceMin", "int32", np.iinfo(np.int32).max), ("ReduceMax", "bool", False),
             ("ReduceMin", "bool", True), ("ReduceLogSum", "float32", -np.inf),
             ("ReduceLogSumExp", "float32", -np.inf), ("ReduceL2", "float32", 0)]
    for op, dtype, want in cases:
        (got,) = run(op, empty[dtype], axis0, keepdims=0)
        assert got.dtype == empty[dtype].dtype and got.shape == (2,), op
        np.testing.assert_array_equal(got, np.full(2, want, got.dtype), err_msg=op)
        if registry.get(op).composite:
            np.testing.assert_array_equal(decomposed(op, [empty[dtype], axis0], {"keepdims": 0})[0], got)
    assert np.isnan(run("ReduceMean", empty["float32"], axis0)[0]).all()


def test_axes_semantics():
    x = np.arange(6, dtype=np.float32).reshape(2, 3) - 2
    (total,) = run("ReduceSum", x)
    assert total.shape == (1, 1) and total[0, 0] == 3
    (same,) = run("ReduceSum", x, np.zeros(0, np.int64), noop_with_empty_axes=1)
    np.testing.assert_array_equal(same, x)
    (squares,) = run("ReduceSumSquare", x, noop_with_empty_axes=1)
    np.testing.assert_array_equal(squares, x * x)
    (rows,) = run("ReduceMax", x, np.array([-1], np.int64), keepdims=0)
    np.testing.assert_array_equal(rows, [0, 3])
    (mean,) = run("ReduceMean", np.array([[-3, 4], [-4, 9]], np.int32), np.array([1], np.int64))
    np.testing.assert_array_equal(mean, [[0], [2]])  # truncated toward zero


def test_log_sum_exp_is_stable():
    x = np.array([[1000, 1000], [-1000, -1000], [-np.inf, -np.inf], [np.inf, 0]], np.float32)
    axis = np.array([1], np.int64)
    want = np.array([1000 + np.log(2), -1000 + np.log(2), -np.inf, np.inf], np.float32)
    np.testing.assert_allclose(run("ReduceLogSumExp", x, axis, keepdims=0)[0], want, rtol=1e-6)
    for constant in ((), (1,)):
        got = decomposed("ReduceLogSumExp", [x, axis], {"keepdims": 0}, constant_inputs=constant)[0]
        np.testing.assert_allclose(got, want, rtol=1e-6)


def test_arg_reductions_break_ties_by_index():
    x = np.array([[1, 3, 3, 0, 0]], np.int32)
    assert run("ArgMax", x, axis=1, keepdims=0)[0].tolist() == [1]
    assert run("ArgMax", x, axis=1, keepdims=0, select_last_index=1)[0].tolist() == [2]
    assert run("ArgMin", x, axis=-1, select_last_index=1)[0].tolist() == [[4]]
    (first,) = run("ArgMin", x, axis=0)
    assert first.dtype == np.int64 and first.tolist() == [[0, 0, 0, 0, 0]]


def test_cumsum_modes_follow_the_onnx_example():
    x = np.array([1, 2, 3], np.float32)
    axis = np.array(0, np.int32)
    modes = {(0, 0): [1, 3, 6], (1, 0): [0, 1, 3], (0, 1): [6, 5, 3], (1, 1): [5, 3, 0]}
    for (exclusive, reverse), want in modes.items():
        np.testing.assert_array_equal(run("CumSum", x, axis, exclusive=exclusive, reverse=reverse)[0], want)
    wrapped = run("CumSum", np.array([2**31 - 1, 1], np.int32), axis)[0]
    assert wrapped.tolist() == [2**31 - 1, -(2**31)]


def test_cumprod_modes_start_from_one_and_wrap():
    x = np.array([2, 3, 4], np.float32)
    axis = np.array(-1, np.int64)
    modes = {(0, 0): [2, 6, 24], (1, 0): [1, 2, 6], (0, 1): [24, 12, 4], (1, 1): [12, 4, 1]}
    for (exclusive, reverse), want in modes.items():
        np.testing.assert_array_equal(run("CumProd", x, axis, exclusive=exclusive, reverse=reverse)[0], want)
    wrapped = run("CumProd", np.array([2**16, 2**16], np.uint32), axis)[0]
    assert wrapped.dtype == np.uint32 and wrapped.tolist() == [2**16, 0]


def test_topk_ties_and_directions():
    x = np.array([[5, 7, 7, 1, 5]], np.int64)
    k = np.array([3], np.int64)
    values, indices = run("TopK", x, k)
    assert values.tolist() == [[7, 7, 5]] and indices.tolist() == [[1, 2, 0]]
    values, indices = run("TopK", x, k, largest=0)
    assert values.tolist() == [[1, 5, 5]] and indices.tolist() == [[3, 0, 4]]
    values, indices = run("TopK", x.T, np.array([2], np.int64), axis=0, sorted=0)
    assert sorted(indices[:, 0].tolist()) == [1, 2] and values.shape == (2, 1)
    empty_values, empty_indices = run("TopK", x, np.array([0], np.int64))
    assert empty_values.shape == (1, 0) and empty_indices.dtype == np.int64


def _infer_types(op, types, attrs, constants):
    opdef = registry.get(op)
    node = Node(op, [f"x{i}" for i in range(len(types))], [f"y{i}" for i in range(n_outputs(op))], attrs)
    return opdef.infer(InferContext(node, types, opdef.full_attrs(node), constants))


def test_infer_with_runtime_and_unknown_inputs():
    data = TensorType("float32", ("N", 3, 4))
    axes = TensorType("int64", (1,))
    assert _infer_types("ReduceSum", [data, axes], {}, [None, None]) == [TensorType("float32", (None,) * 3)]
    assert _infer_types("ReduceSum", [data, axes], {"keepdims": 0}, [None, None]) == [
        TensorType("float32", (None, None))]
    assert _infer_types("ReduceMean", [data, axes], {"keepdims": 0}, [None, np.array([0])]) == [
        TensorType("float32", (3, 4))]
    assert _infer_types("ReduceMax", [data], {"keepdims": 0}, [None]) == [TensorType("float32", ())]
    assert _infer_types("ReduceMax", [TensorType("float32")], {"keepdims": 0}, [None]) == [
        TensorType("float32", ())]
    assert _infer_types("ReduceMax", [TensorType("float32")], {}, [None]) == [TensorType("float32")]
    assert _infer_types("ArgMax", [data], {"axis": -1, "keepdims": 0}, [None]) == [TensorType("int64", ("N", 3))]
    assert _infer_types("TopK", [data, TensorType("int64", (1,))], {"axis": 1}, [None, None]) == [
        TensorType("float32", ("N", None, 4)), TensorType("int64", ("N", None, 4))]
    assert _infer_types("TopK", [data, TensorType("int64", (1,))], {}, [None, np.array([2])]) == [
        TensorType("float32", ("N", 3, 2)), TensorType("int64", ("N", 3, 2))]
