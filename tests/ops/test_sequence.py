"""Sequence and optional ops: our references against onnx.reference on drawn samples,
inferred types against the values, and sequences through Session, import and export."""
from __future__ import annotations

import numpy as np
import pytest
from dh_core.conformance.runner import one_node_graph
from dh_core.onnx_io import export_model, import_model
from hypothesis import HealthCheck, assume, given, settings
from onnx import TensorProto, helper

import dh_core as dh
from dh_core.errors import InputError, ShapeError
from dh_core.ir import OptionalType, SequenceType, TensorType, type_from_key, type_key
from dh_core.passes import infer_types

from .control_oracle import assert_same, onnx_outputs, ours, strategy
from .oracle import ours as run_reference

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPS = ["SequenceConstruct", "SequenceEmpty", "SequenceLength", "SequenceAt", "SequenceInsert", "SequenceErase",
       "SplitToSequence", "ConcatFromSequence", "Optional", "OptionalHasElement", "OptionalGetElement"]


@pytest.mark.parametrize("dtype", ["float32", "int64"])
@pytest.mark.parametrize("op", OPS)
def test_reference_matches_onnx(op, dtype):
    @SETTINGS
    @given(strategy(op, dtype))
    def check(sample):
        assume(not _onnx_reference_divides_by_zero(op, sample))
        want = onnx_outputs(op, sample)
        got = ours(op, sample)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)

    check()


def _onnx_reference_divides_by_zero(op, sample) -> bool:
    """onnx.reference's SequenceInsert takes the position modulo the length: it fails on
    an empty sequence and puts position len (the end, by the spec) first;
    test_insert_into_an_empty_sequence and test_insert_at_the_end cover those cases."""
    if op != "SequenceInsert" or len(sample.inputs) < 3:
        return False
    return not sample.inputs[0] or int(sample.inputs[2]) == len(sample.inputs[0])


def test_insert_at_the_end():
    a, t = np.zeros(1, np.float32), np.ones(2, np.float32)
    (out,) = ours("SequenceInsert", _sample([[a], t, np.array(1, np.int64)]))
    assert_same(out, [a, t])


def test_insert_into_an_empty_sequence():
    t = np.ones(2, np.float32)
    for pos in (0, -0):
        (out,) = ours("SequenceInsert", _sample([[], t, np.array(pos, np.int64)]))
        assert_same(out, [t])
    with pytest.raises(ShapeError, match="position 1 is outside"):
        run_reference("SequenceInsert", [[], t, np.array(1, np.int64)])


@pytest.mark.parametrize("op", OPS)
def test_inferred_types_match_the_values(op):
    @SETTINGS
    @given(strategy(op, "float32"))
    def check(sample):
        graph = one_node_graph(op, sample)
        for name, value in zip(graph.output_names, ours(op, sample)):
            t = graph.value_types.get(name)
            assert t is not None
            if isinstance(t, OptionalType):
                t = t.elem
            if isinstance(value, list):
                assert isinstance(t, SequenceType)
                for x in value:
                    _fits(t.elem, x)
            elif value is not None:
                _fits(t, value)

    check()


def _fits(t: TensorType | None, x: np.ndarray) -> None:
    if t is None:
        return
    assert t.dtype == x.dtype.name
    if t.shape is not None:
        assert len(t.shape) == x.ndim
        assert all(d is None or isinstance(d, str) or d == n for d, n in zip(t.shape, x.shape))


def test_type_keys_round_trip():
    for t in (TensorType("float32"), SequenceType(TensorType("int64")), OptionalType(TensorType("bool")),
              OptionalType(SequenceType(TensorType("float16")))):
        assert type_from_key(type_key(t)) == t
    assert type_key(OptionalType(SequenceType(TensorType("uint8")))) == "optional(seq(uint8))"


def test_bad_positions_raise_typed_errors():
    seq = [np.zeros(2, np.float32)]
    with pytest.raises(ShapeError, match="position 1 is outside"):
        run_reference("SequenceAt", [seq, np.array(1)])
    with pytest.raises(ShapeError, match="empty"):
        run_reference("OptionalGetElement", [None])


def _sample(inputs):
    from dh_core.conformance.samples import Sample

    return Sample(inputs)


def _sequence_model():
    seq_in = helper.make_tensor_sequence_value_info("s", TensorProto.FLOAT, None)
    opt_in = helper.make_value_info("o", helper.make_optional_type_proto(
        helper.make_tensor_type_proto(TensorProto.FLOAT, [2])))
    nodes = [helper.make_node("SequenceInsert", ["s", "x"], ["s2"]),
             helper.make_node("SequenceLength", ["s2"], ["n"]),
             helper.make_node("OptionalHasElement", ["o"], ["has"])]
    graph = helper.make_graph(nodes, "seq", [seq_in, helper.make_tensor_value_info("x", TensorProto.FLOAT, [2]),
                                             opt_in],
                              [helper.make_tensor_sequence_value_info("s2", TensorProto.FLOAT, None),
                               helper.make_tensor_value_info("n", TensorProto.INT64, []),
                               helper.make_tensor_value_info("has", TensorProto.BOOL, [])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def test_session_takes_and_returns_lists_and_none():
    sess = dh.Session(_sequence_model())
    x = np.arange(2, dtype=np.float32)
    s2, n, has = sess.run({"s": [np.ones(3, np.float32)], "x": x, "o": None})
    assert isinstance(s2, list) and len(s2) == 2
    np.testing.assert_array_equal(s2[1], x)
    assert int(n) == 2 and not bool(has)
    assert bool(sess.run({"s": [], "x": x, "o": x})[2])


def test_session_checks_sequence_inputs():
    sess = dh.Session(_sequence_model())
    x = np.zeros(2, np.float32)
    with pytest.raises(InputError, match="input 's' is a sequence"):
        sess.run({"s": x, "x": x, "o": None})
    with pytest.raises(InputError, match=r"input 's\[0\]' has dtype int64"):
        sess.run({"s": [np.zeros(2, np.int64)], "x": x, "o": None})


def test_sequence_and_optional_types_survive_export_and_import():
    graph = import_model(_sequence_model())
    assert graph.type_of("s") == SequenceType(TensorType("float32"))
    assert graph.type_of("o") == OptionalType(TensorType("float32", (2,)))
    again = import_model(export_model(graph))
    assert again.type_of("s") == graph.type_of("s")
    assert again.type_of("o") == graph.type_of("o")


def test_optional_type_attribute_round_trips():
    b = dh.GraphBuilder("opt")
    b.input("x", "float32", (2,))
    o = b.Optional(type=SequenceType(TensorType("int32")))
    has = b.OptionalHasElement(o)
    b.output(has, "x")
    graph = b.build()
    assert graph.type_of(o) == OptionalType(SequenceType(TensorType("int32")))
    again = import_model(export_model(graph))
    assert again.nodes[0].attrs["type"] == SequenceType(TensorType("int32"))
    infer_types(again)
    (has_value, _) = dh.Session(again).run({"x": np.zeros(2, np.float32)})
    assert not bool(has_value)
