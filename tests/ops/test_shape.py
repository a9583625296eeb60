"""Shape and data-movement ops: our references against onnx.reference, type inference
against the actual outputs (with and without constant inputs), and composites'
decompositions against their references."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from dh_core.conformance.samples import Sample, all_samples
from dh_core.ops import registry
from dh_core.ops.base import Decomposer, InferContext
from dh_core.ops.shape import resize_plan
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from onnx.reference.ops.op_resize import _compute_x_ori

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import Node, TensorType

from .oracle import (
    assert_all_match,
    assert_matches,
    decomposed,
    draw_sample,
    infer,
    infer_compatible,
    onnx_run,
    ours,
    sample_outputs,
)

OPS = ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Concat", "Split", "Slice",
       "Gather", "GatherElements", "ScatterND", "Expand", "Tile", "Pad", "Shape", "Size",
       "ConstantOfShape", "Constant", "Range", "Resize", "DepthToSpace", "SpaceToDepth", "OneHot",
       "Trilu", "Dropout")
CORE = {"Reshape", "Transpose", "Concat", "Slice", "Gather", "GatherElements", "ScatterND",
        "Expand", "Tile", "Pad", "Shape", "ConstantOfShape", "Constant", "Range", "Resize"}
# inputs whose values inference may read (they are initializers in a real graph)
CONSTANT_INPUTS = {"Reshape": (1,), "Squeeze": (1,), "Unsqueeze": (1,), "Split": (1,), "Slice": (1, 2, 3, 4),
                   "Expand": (1,), "Tile": (1,), "Pad": (1, 2, 3), "ConstantOfShape": (0,),
                   "Range": (0, 1, 2), "Resize": (1, 2, 3), "OneHot": (1,), "Trilu": (1,), "Dropout": (1, 2)}

SAMPLES = all_samples()
CASES = [(op, dtype) for op in OPS for dtype in SAMPLES[op].dtypes]
ORACLE_GAPS = {("Resize", "bool"): "onnx.reference's Resize cannot cast its float result to bool"}
ORACLE_CASES = [pytest.param(op, dtype, marks=pytest.mark.skip(reason=ORACLE_GAPS[op, dtype]))
                if (op, dtype) in ORACLE_GAPS else (op, dtype) for op, dtype in CASES]
COMPOSITE_CASES = [(op, dtype) for op, dtype in CASES if op not in CORE]
EXAMPLES = settings(max_examples=30, deadline=None)


def oracle_case(op: str, sample: Sample) -> Sample:
    """The sample as fed to onnx.reference, adjusted around its known gaps."""
    if op == "Pad":
        # onnx.reference pads with np.pad, which rejects negative pads (cropping).
        assume(all(p >= 0 for p in sample.inputs[1]))
    if op == "Flatten":
        # onnx.reference reshapes to (rows, -1), which numpy cannot resolve for zero rows.
        x, axis = sample.inputs[0], sample.attrs["axis"]
        assume(x.size or math.prod(x.shape[:axis + x.ndim if axis < 0 else axis]))
    if op == "OneHot":
        # onnx.reference computes hot * (on - off) + off: non-finite values turn to nan,
        # bool values cannot be subtracted, and in float16 and bfloat16 the arithmetic
        # rounds (33 + (0.4219 - 33) is 0.4375 in float16; it is exact when on or off is 0).
        values = sample.inputs[2]
        is_bf16 = dt.name_of(values.dtype) == "bfloat16"
        assume(values.dtype != bool and (values.dtype.kind != "f" and not is_bf16 or np.isfinite(values).all()))
        assume(not (is_bf16 or values.dtype == np.float16) or (values == 0).any())
    if op == "Resize" and sample.attrs["mode"] == "nearest" and sample.inputs[0].dtype.kind == "f":
        # onnx.reference weighs both neighbours by 1 and 0, so inf and nan leak into
        # their neighbours as nan; ours picks the nearest one.
        assume(np.isfinite(sample.inputs[0]).all())
    if op == "Resize" and sample.inputs[0].dtype in (np.int64, np.uint64):
        # onnx.reference computes in float64, exact for integers below 2**53 only, and
        # casts values that round up to 2**63 or 2**64 out of range.
        assume(np.all(np.abs(sample.inputs[0].astype(np.float64)) < 2**53))
    if op == "Resize":
        assume(not resize_window_slips(sample))
    if op == "GatherElements":
        # onnx.reference slices shapes with the raw axis, which breaks for negative ones.
        return Sample(sample.inputs, {"axis": sample.attrs["axis"] % sample.inputs[0].ndim})
    return sample


def resize_window_slips(sample: Sample) -> bool:
    """Whether onnx.reference picks a tap window off by one for some output of a Resize
    sample: it looks for the n taps around a source coordinate x on x + n/2, which can
    round to an integer when x is not (x = 1e-16 gives taps from -n/2, not 1 - n/2).
    Its weights then sit on the wrong taps, which shows after rounding to integers or
    when exclude_outside drops a tap."""
    x, roi, scales, sizes = (list(sample.inputs) + [None] * 3)[:4]
    attrs = sample.attrs
    order, scale, size = resize_plan(
        x.shape, None if scales is None else scales.tolist(), None if sizes is None else sizes.tolist(),
        attrs.get("axes"), attrs.get("keep_aspect_ratio_policy", "stretch"))
    mode = attrs["coordinate_transformation_mode"]
    for i, axis in enumerate(order):
        s = scale[axis]
        bounds = None if roi is None else [roi[i], roi[len(order) + i]]
        coords, _ = _compute_x_ori(mode, np.arange(size[axis], dtype=np.float64), s, x.shape[axis],
                                   s * x.shape[axis], size[axis], bounds)
        reach = 2 if attrs["mode"] == "cubic" else 1  # kernel radius before antialiasing
        half = -math.floor(-reach / min(s, 1.0)) if attrs.get("antialias") else reach
        shifted = coords + half
        if np.any((shifted == np.floor(shifted)) != (coords == np.floor(coords))):
            return True
    return False


def oracle_view(op: str, got: list[np.ndarray]) -> list[np.ndarray]:
    """Our outputs as onnx.reference states them."""
    if op == "Resize" and got[0].dtype.kind == "f":
        # onnx.reference saturates its result to the dtype's finite range, inf included.
        info = np.finfo(got[0].dtype)
        return [np.clip(got[0], info.min, info.max)]
    return got


@pytest.mark.parametrize(("op", "dtype"), ORACLE_CASES)
@EXAMPLES
@given(data=st.data())
def test_reference_matches_onnx(op, dtype, data):
    sample = draw_sample(data, op, dtype)
    n = sample_outputs(op, sample)
    case = oracle_case(op, sample)
    got = oracle_view(op, ours(op, sample.inputs, sample.attrs, n))
    want = onnx_run(op, case.inputs, case.attrs, n)
    assert len(got) == len(want) == n
    for g, w in zip(got, want):
        if op == "Resize" and sample.attrs["mode"] == "cubic":
            assert_cubic_close(g, w, sample.inputs[0], SAMPLES[op].tolerance_for(g.dtype.name))
        else:
            assert_matches(g, w, SAMPLES[op].tolerance_for(g.dtype.name))


def assert_cubic_close(got: np.ndarray, want: np.ndarray, x: np.ndarray, tolerance: tuple[float, float]) -> None:
    """onnx.reference evaluates cubic weights in float32 (cubic_coeff_a reaches it as a
    np.float32), so they miss a partition of unity by ~1e-7 per axis: results may differ
    by ~1e-5 of the input's magnitude, and integer results by one more after rounding."""
    assert got.dtype == want.dtype and got.shape == want.shape
    finite = x[np.isfinite(x)] if x.dtype.kind == "f" else x
    scale = float(np.abs(finite.astype(np.float64)).max(initial=0))
    rtol, atol = tolerance
    atol = max(atol, 1e-5 * scale) + (1.0 if got.dtype.kind in "iub" else 0.0)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=max(rtol, 1e-6),
                               atol=atol, equal_nan=True)



@pytest.mark.parametrize(("op", "dtype"), CASES)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_infer_matches_outputs(op, dtype, data):
    sample = draw_sample(data, op, dtype)
    n = sample_outputs(op, sample)
    got = ours(op, sample.inputs, sample.attrs, n)
    known = infer(op, sample.inputs, sample.attrs, n, CONSTANT_INPUTS.get(op, ()))
    assert known == [TensorType(g.dtype.name, g.shape) for g in got]
    partial = infer(op, sample.inputs, sample.attrs, n)
    assert len(partial) == n and all(infer_compatible(t, g) for t, g in zip(partial, got)), partial


@pytest.mark.parametrize(("op", "dtype"), COMPOSITE_CASES)
@settings(max_examples=20, deadline=None)
@given(data=st.data())
def test_decomposition_matches_reference(op, dtype, data):
    sample = draw_sample(data, op, dtype)
    # a Dropout that drops needs random numbers, which no library op makes
    assume(not (op == "Dropout" and len(sample.inputs) > 2 and sample.inputs[2] and sample.inputs[1] != 0))
    n = sample_outputs(op, sample)
    want = ours(op, sample.inputs, sample.attrs, n)
    got = decomposed(op, sample.inputs, sample.attrs, n, CONSTANT_INPUTS.get(op, ()))
    assert_all_match(got, want, (0, 0))


def test_every_op_is_registered_with_samples_and_tier():
    for op in OPS:
        opdef = registry.get(op)
        assert opdef.composite == (op not in CORE), op
        assert op in SAMPLES, op
        main = opdef.outputs[0] if op in ("Constant", "ConstantOfShape") else opdef.inputs[0]
        assert set(SAMPLES[op].dtypes) == set(opdef.dtypes(main.type)), op


# -- decompositions with symbolic shapes ---------------------------------------------------
def decomposed_symbolic(op: str, inputs, shapes, attrs=None, constant_inputs=()):
    """Run a decomposition built from symbolic input types (so that it cannot bake in a
    static shape), evaluating the emitted nodes with our references."""
    opdef = registry.get(op)
    names = [f"x{i}" for i in range(len(inputs))]
    node = Node(op, names, ["y0"], dict(attrs or {}), name=op)
    types = [TensorType(x.dtype.name, s) for x, s in zip(inputs, shapes)]
    consts = [x if i in constant_inputs else None for i, x in enumerate(inputs)]
    counter = itertools.count()
    d = Decomposer(node, types, opdef.full_attrs(node), consts, lambda base: f"{base}_{next(counter)}")
    opdef.decompose(d)
    env = dict(zip(names, inputs)) | d.initializers
    for sub in d.nodes:
        results = registry.get(sub.op).run_reference(sub, [env[i] if i else None for i in sub.inputs])
        env.update(zip(sub.outputs, results))
    return env["y0"], [n.op for n in d.nodes]


@pytest.mark.parametrize("axis", [0, 1, 2, -1, 3])
def test_flatten_decomposes_without_a_static_shape(axis):
    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    got, ops = decomposed_symbolic("Flatten", [x], [("N", 3, None)], {"axis": axis})
    np.testing.assert_array_equal(got, ours("Flatten", [x], {"axis": axis})[0])
    assert "Shape" in ops and ops[-1] == "Reshape"


def test_flatten_with_a_static_shape_is_one_reshape():
    x = np.zeros((0, 3, 4), np.int8)
    got = decomposed("Flatten", [x], {"axis": 2})
    assert got[0].shape == (0, 4)
    _, ops = decomposed_symbolic("Flatten", [x], [(0, 3, 4)], {"axis": 2})
    assert ops == ["Reshape"]


def test_squeeze_and_unsqueeze_decompose_with_symbolic_dims():
    x = np.arange(6, dtype=np.int32).reshape(2, 1, 3)
    axes = np.array([1], np.int64)
    got, ops = decomposed_symbolic("Squeeze", [x, axes], [("N", 1, None), (1,)], constant_inputs=(1,))
    assert got.shape == (2, 3) and "Gather" in ops
    new_axes = np.array([0, -1], np.int64)
    got, _ = decomposed_symbolic("Unsqueeze", [x, new_axes], [("N", 1, 3), (2,)], constant_inputs=(1,))
    np.testing.assert_array_equal(got, x.reshape(1, 2, 1, 3, 1))


def test_decompositions_needing_constants_say_so():
    x = np.zeros((2, 1), np.float32)
    with pytest.raises(ShapeError, match="constant axes"):
        decomposed("Squeeze", [x, np.array([1], np.int64)])
    with pytest.raises(ShapeError, match="static input shape"):
        decomposed_symbolic("DepthToSpace", [np.zeros((1, 4, 1, 1), np.float32)], [("N", 4, 1, 1)],
                            {"blocksize": 2})


# -- inference with symbolic dims ----------------------------------------------------------
def infer_types(op: str, types, attrs=None, constants=(), n_outputs: int = 1):
    opdef = registry.get(op)
    node = Node(op, [f"x{i}" for i in range(len(types))], [f"y{i}" for i in range(n_outputs)], dict(attrs or {}))
    consts = list(constants) + [None] * (len(types) - len(constants))
    return opdef.infer(InferContext(node, types, opdef.full_attrs(node), consts))


def test_reshape_infers_minus_one_through_symbols():
    data = TensorType("float32", ("N", 3, 4))
    (out,) = infer_types("Reshape", [data, TensorType("int64", (2,))], constants=[None, np.array([0, -1])])
    assert out == TensorType("float32", ("N", 12))
    (out,) = infer_types("Reshape", [data, TensorType("int64", (2,))], constants=[None, np.array([-1, 4])])
    assert out == TensorType("float32", (None, 4))
    (out,) = infer_types("Reshape", [data, TensorType("int64", (3,))])
    assert out == TensorType("float32", (None, None, None))


def test_symbolic_dims_flow_through_movement_ops():
    x = TensorType("float16", ("B", "S", 8))
    assert infer_types("Transpose", [x], {"perm": [2, 0, 1]}) == [TensorType("float16", (8, "B", "S"))]
    assert infer_types("Concat", [x, TensorType("float16", ("B", "S", 2))], {"axis": -1}) == [
        TensorType("float16", ("B", "S", 10))]
    assert infer_types("Concat", [x, x], {"axis": 1}) == [TensorType("float16", ("B", None, 8))]
    assert infer_types("Gather", [x, TensorType("int64", ("K",))], {"axis": 1}) == [
        TensorType("float16", ("B", "K", 8))]
    assert infer_types("Flatten", [x], {"axis": 2}) == [TensorType("float16", (None, 8))]
    assert infer_types("Shape", [x], {"start": -2}) == [TensorType("int64", (2,))]
    assert infer_types("Slice", [x, TensorType("int64", (1,)), TensorType("int64", (1,))],
                       constants=[None, np.array([1]), np.array([5])]) == [TensorType("float16", (None, "S", 8))]


def test_inference_never_crashes_on_unknown_rank():
    unknown = TensorType("float32")
    for op in OPS:
        opdef = registry.get(op)
        if not opdef.inputs or op in ("OneHot", "Range"):
            continue
        types = [unknown] + [None] * (len(opdef.inputs) - 1)
        attrs = {"axis": 0} if op == "Concat" else {"blocksize": 2} if "Depth" in op else {}
        result = infer_types(op, types, attrs)
        assert result and (result[0] is None or result[0].dtype in ("float32", "int64")), op


# -- semantics beyond the oracle's reach ---------------------------------------------------
def test_pad_negative_pads_crop():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    (got,) = ours("Pad", [x, np.array([-1, 1, 0, -2], np.int64), np.array(9, np.float32)])
    want = np.full((2, 3), 9, np.float32)
    want[:, 1:] = x[1:, :2]
    np.testing.assert_array_equal(got, want)


def test_resize_keeps_infinities():
    x = np.array([[1.0, np.inf]], np.float32)
    (got,) = ours("Resize", [x, None, np.array([1, 2], np.float32)], {"mode": "nearest"})
    np.testing.assert_array_equal(got, [[1, 1, np.inf, np.inf]])


def test_resize_integer_results_round_half_to_even_and_saturate():
    x = np.array([0, 1, 255, 255], np.uint8)
    (got,) = ours("Resize", [x, None, None, np.array([8], np.int64)], {"mode": "cubic"})
    assert got.dtype == np.uint8 and got.max() == 255
    (half,) = ours("Resize", [np.array([0, 1], np.int32), None, None, np.array([3], np.int64)],
                   {"mode": "linear", "coordinate_transformation_mode": "align_corners"})
    np.testing.assert_array_equal(half, [0, 0, 1])


@pytest.mark.parametrize("seed", [1234, None])
def test_dropout_training_keeps_one_minus_ratio_scaled(seed):
    """The share of kept elements and the scale of the kept ones follow the ratio, with a
    seed and with a fresh one (the bound is 6 standard deviations: a false failure has
    probability 2e-9)."""
    x = np.full((200, 50), 2.0, np.float32)
    ratio = np.array(0.3, np.float32)
    attrs = {} if seed is None else {"seed": seed}
    out, mask = ours("Dropout", [x, ratio, np.array(True)], attrs, 2)
    # 10000 Bernoulli(0.7) draws: the share's standard deviation is 0.0046
    assert abs(mask.mean() - 0.7) < 6 * 0.0046
    np.testing.assert_allclose(out[mask], 2.0 / np.float32(0.7), rtol=1e-6)
    assert (out[~mask] == 0).all() and out.dtype == np.float32
    again, _ = ours("Dropout", [x, ratio, np.array(True)], attrs, 2)
    # the same seed draws the same mask; fresh entropy a different one (equal: p = 0.58**10000)
    assert np.array_equal(again, out) == (seed is not None)


def test_dropout_with_a_seed_repeats_its_mask_and_ratio_zero_is_identity():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)
    ratio = np.array(0.5, np.float32)
    first = ours("Dropout", [x, ratio, np.array(True)], {"seed": 7}, 2)
    second = ours("Dropout", [x, ratio, np.array(True)], {"seed": 7}, 2)
    assert_all_match(first, second, (0, 0))
    (same, mask) = ours("Dropout", [x, np.array(0.0, np.float32), np.array(True)], {}, 2)
    np.testing.assert_array_equal(same, x)
    assert mask.dtype == bool and mask.all()
    assert infer("Dropout", [x, None, np.array(True)], {}, 2, constant_inputs=(2,)) == [
        TensorType("float32", (4, 6)), TensorType("bool", (4, 6))]
    with pytest.raises(ShapeError, match="outside"):
        ours("Dropout", [x, np.array(1.0, np.float32), np.array(True)])


def test_onehot_truncates_non_integer_depth_and_indices():
    indices = np.array([1.7, -1.2, 5.0], np.float32)
    (got,) = ours("OneHot", [indices, np.array(3.9, np.float32), np.array([0, 1], np.int64)])
    np.testing.assert_array_equal(got, [[0, 1, 0], [0, 0, 1], [0, 0, 0]])
    got = decomposed("OneHot", [indices, np.array(3.9, np.float32), np.array([0, 1], np.int64)],
                     constant_inputs=(1,))
    np.testing.assert_array_equal(got[0], [[0, 1, 0], [0, 0, 1], [0, 0, 0]])


@pytest.mark.parametrize(("op", "inputs", "attrs", "message"), [
    ("Reshape", [np.zeros(6), np.array([4, -1])], {}, "reshape"),
    ("Split", [np.zeros(5), None], {"num_outputs": 4}, "chunks"),
    ("Slice", [np.zeros(3), np.array([0]), np.array([2]), None, np.array([0])], {}, "step"),
    ("Tile", [np.zeros((2, 2)), np.array([2])], {}, "repeats"),
    ("Constant", [], {}, "exactly one"),
    ("Constant", [], {"value_string": "x"}, "string"),
    ("Trilu", [np.zeros(3)], {}, "rank"),
])
def test_invalid_inputs_raise_shape_errors(op, inputs, attrs, message):
    with pytest.raises(ShapeError, match=message):
        ours(op, inputs, attrs)
