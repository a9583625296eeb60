"""Samples for control flow (If, Loop, Scan, SequenceMap), sequences and optionals.

Subgraphs are small hand-built graphs; those that read the enclosing graph name the
values in ``Sample.outer``. Sequences are lists of arrays; an absent optional is an
omitted input.
"""
from __future__ import annotations

import numpy as np
from dh_core.ops.values import ELEMENT_DTYPES
from hypothesis import strategies as st

from dh_core import dtypes as dt
from dh_core.ir import Graph, Node, TensorType, Value

from . import Sample, samples
from .strategies import arrays, shapes

INDEX_DTYPES = st.sampled_from(dt.INDEX)


def _body(name: str, inputs: list[Value], nodes: list[Node], outputs: list[Value]) -> Graph:
    return Graph(nodes, inputs, outputs, name=name)


def _combine(dtype: str) -> str:
    """An elementwise op of two operands that every dtype has: Or for bool, else Max."""
    return "Or" if dtype == "bool" else "Max"


def _index(value: int, dtype: str) -> np.ndarray:
    return np.array(value, dtype=dtype)


def _sequence(dtype: str, min_size: int = 0, max_size: int = 3, shape=None):
    """Lists of arrays of one dtype (of one shape when ``shape`` is given)."""
    return st.lists(arrays(dtype, shape if shape is not None else shapes(max_dims=3, max_side=3)),
                    min_size=min_size, max_size=max_size)


# -- control flow -------------------------------------------------------------------------
@samples("If", dt.ALL)
def if_(dtype):
    @st.composite
    def draw(draw_):
        cond = np.array(draw_(st.booleans()))
        x = draw_(arrays(dtype, shapes(max_dims=3)))
        then = _body("then", [], [Node("Identity", ["o"], ["t"], name="then_id")], [Value("t", TensorType(dtype))])
        other = _body("else", [], [Node("Flatten", ["o"], ["e"], {"axis": 0}, name="else_flat")],
                      [Value("e", TensorType(dtype))])
        return Sample([cond], {"then_branch": then, "else_branch": other}, outer={"o": x})

    return draw()


@samples("Loop", dt.ALL)
def loop(dtype):
    """The body combines a carried value with an outer tensor and scans the iteration
    number (as a 1-element tensor); the trip count, the condition and the body's stop
    vary (zero iterations included)."""

    @st.composite
    def draw(draw_):
        shape = draw_(shapes(max_dims=2, max_side=3))
        v = draw_(arrays(dtype, shape))
        outer = draw_(arrays(dtype, shape))
        trips = draw_(st.integers(0, 3))
        m = np.array(trips, np.int64) if draw_(st.booleans()) or trips == 0 else None
        cond = np.array(draw_(st.booleans())) if m is not None and draw_(st.booleans()) else None
        body = _body("loop_body", [Value("i", TensorType("int64", ())), Value("c", TensorType("bool", ())),
                                   Value("v", TensorType(dtype, shape))],
                     [Node(_combine(dtype), ["v", "o"], ["v_out"], name="combine"),
                      Node("Less", ["i", "limit"], ["c_out"], name="stop"),
                      Node("Unsqueeze", ["i", "axis0"], ["i_out"], name="scan_i")],
                     [Value("c_out", TensorType("bool", ())), Value("v_out", TensorType(dtype, shape)),
                      Value("i_out", TensorType("int64", (1,)))])
        for name, value in (("limit", np.array(trips, np.int64)), ("axis0", np.array([0], np.int64))):
            body.initializers[name] = value
            body.value_types[name] = TensorType("int64", value.shape)
        return Sample([m, cond, v], {"body": body}, outer={"o": outer})

    return draw()


@samples("Scan", dt.ALL)
def scan(dtype):
    """A running combination (Max, or Or for bool) of the slices of one scan input,
    with random scan axes and directions; the state and every partial result come out."""

    @st.composite
    def draw(draw_):
        elem = draw_(shapes(max_dims=2, max_side=3))
        length = draw_(st.integers(1, 4))
        in_axis = draw_(st.integers(0, len(elem)))
        x = draw_(arrays(dtype, elem[:in_axis] + (length,) + elem[in_axis:]))
        state = draw_(arrays(dtype, elem))
        out_axis = draw_(st.integers(-len(elem) - 1, len(elem)))
        body = _body("scan_body", [Value("s", TensorType(dtype, elem)), Value("x_t", TensorType(dtype, elem))],
                     [Node(_combine(dtype), ["s", "x_t"], ["s_out"], name="combine"),
                      Node("Identity", ["s_out"], ["y"], name="emit")],
                     [Value("s_out", TensorType(dtype, elem)), Value("y", TensorType(dtype, elem))])
        attrs = {"body": body, "num_scan_inputs": 1,
                 "scan_input_axes": [in_axis - (len(elem) + 1) * draw_(st.integers(0, 1))],
                 "scan_input_directions": [draw_(st.integers(0, 1))],
                 "scan_output_axes": [out_axis], "scan_output_directions": [draw_(st.integers(0, 1))]}
        return Sample([state, x], attrs)

    return draw()


@samples("SequenceMap", ELEMENT_DTYPES)
def sequence_map(dtype):
    """Each tensor of a sequence combined with the same position of a second sequence or
    with one tensor; the body also returns the element's shape."""

    @st.composite
    def draw(draw_):
        shape = draw_(shapes(max_dims=2, max_side=3))
        seq = draw_(_sequence(dtype, 0, 3, shape))
        other = draw_(st.one_of(arrays(dtype, shape), _sequence(dtype, len(seq), len(seq), shape)))
        body = _body("map_body", [Value("a", TensorType(dtype)), Value("b", TensorType(dtype))],
                     [Node(_combine(dtype), ["a", "b"], ["c"], name="combine"),
                      Node("Shape", ["a"], ["s"], name="shape")],
                     [Value("c", TensorType(dtype)), Value("s", TensorType("int64", (len(shape),)))])
        return Sample([seq, other], {"body": body})

    return draw()


# -- sequences ------------------------------------------------------------------------------
@samples("SequenceConstruct", ELEMENT_DTYPES)
def sequence_construct(dtype):
    return _sequence(dtype, 1, 3).map(lambda seq: Sample(list(seq)))


@samples("SequenceEmpty", ELEMENT_DTYPES)
def sequence_empty(dtype):
    return st.just(Sample([], {"dtype": dt.onnx_code(dtype)}))


@samples("SequenceLength", ELEMENT_DTYPES)
def sequence_length(dtype):
    return _sequence(dtype).map(lambda seq: Sample([seq]))


@samples("SequenceAt", ELEMENT_DTYPES)
def sequence_at(dtype):
    @st.composite
    def draw(draw_):
        seq = draw_(_sequence(dtype, 1))
        pos = draw_(st.integers(-len(seq), len(seq) - 1))
        return Sample([seq, _index(pos, draw_(INDEX_DTYPES))])

    return draw()


@samples("SequenceInsert", ELEMENT_DTYPES)
def sequence_insert(dtype):
    @st.composite
    def draw(draw_):
        seq = draw_(_sequence(dtype))
        tensor = draw_(arrays(dtype, shapes(max_dims=3, max_side=3)))
        if draw_(st.booleans()):
            return Sample([seq, tensor])
        pos = draw_(st.integers(-len(seq), len(seq)))
        return Sample([seq, tensor, _index(pos, draw_(INDEX_DTYPES))])

    return draw()


@samples("SequenceErase", ELEMENT_DTYPES)
def sequence_erase(dtype):
    @st.composite
    def draw(draw_):
        seq = draw_(_sequence(dtype, 1))
        if draw_(st.booleans()):
            return Sample([seq])
        pos = draw_(st.integers(-len(seq), len(seq) - 1))
        return Sample([seq, _index(pos, draw_(INDEX_DTYPES))])

    return draw()


@samples("SplitToSequence", ELEMENT_DTYPES)
def split_to_sequence(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1, max_dims=3)))
        axis = draw_(st.integers(-x.ndim, x.ndim - 1))
        n = x.shape[axis]
        attrs = {"axis": axis, "keepdims": draw_(st.integers(0, 1))}
        how = draw_(st.sampled_from(["none", "scalar", "sizes"]))
        if how == "none":
            return Sample([x], attrs)
        index = draw_(INDEX_DTYPES)
        if how == "scalar" and n:
            return Sample([x, _index(draw_(st.integers(1, n)), index)], attrs)
        sizes: list[int] = []
        while sum(sizes) < n:
            sizes.append(draw_(st.integers(0, n - sum(sizes))))
        return Sample([x, np.array(sizes, dtype=index)], attrs)

    return draw()


@samples("ConcatFromSequence", ELEMENT_DTYPES)
def concat_from_sequence(dtype):
    @st.composite
    def draw(draw_):
        base = draw_(shapes(min_dims=1, max_dims=3, max_side=3))
        new_axis = draw_(st.integers(0, 1))
        rank = len(base) + new_axis
        axis = draw_(st.integers(-rank, rank - 1))
        count = draw_(st.integers(1, 3))
        seq = []
        for _ in range(count):
            shape = list(base)
            if not new_axis:
                shape[axis] = draw_(st.integers(0, 3))
            seq.append(draw_(arrays(dtype, tuple(shape))))
        return Sample([seq], {"axis": axis, "new_axis": new_axis})

    return draw()


# -- optionals ------------------------------------------------------------------------------
def _tensor_or_sequence(dtype: str):
    return st.one_of(arrays(dtype, shapes(max_dims=3, max_side=3)), _sequence(dtype))


@samples("Optional", ELEMENT_DTYPES)
def optional(dtype):
    present = _tensor_or_sequence(dtype).map(lambda x: Sample([x]))
    absent = st.just(Sample([None], {"type": TensorType(dtype)}))
    return st.one_of(present, absent)


@samples("OptionalHasElement", ELEMENT_DTYPES)
def optional_has_element(dtype):
    return st.one_of(_tensor_or_sequence(dtype).map(lambda x: Sample([x])), st.just(Sample([None])))


@samples("OptionalGetElement", ELEMENT_DTYPES)
def optional_get_element(dtype):
    return _tensor_or_sequence(dtype).map(lambda x: Sample([x]))
