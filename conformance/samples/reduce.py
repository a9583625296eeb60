"""Samples for the reductions, ArgMax/ArgMin, CumSum, CumProd and TopK.

The reductions' ``axes`` is an int64 input: omitted, empty, or a list of distinct axes
(negative ones included), combined with both keepdims and noop_with_empty_axes values.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays, elements, shapes

REDUCE_NUMERIC = ("int32", "int64", "uint32", "uint64") + dt.FLOATS
REDUCE_ORDERED = REDUCE_NUMERIC + ("int8", "uint8", "bool")
# Summation order differs between implementations: float tolerances cover values of
# magnitude 10 summed over up to 625 elements.
SUM_TOLERANCE = {"float16": (1e-2, 1e-1), "float32": (1e-5, 1e-4), "float64": (1e-10, 1e-10)}


def axes_input(rank: int):
    """None (omitted), an empty axes tensor, or distinct axes in [-rank, rank)."""
    empty = st.just(np.zeros(0, np.int64))
    if rank == 0:
        return st.one_of(st.none(), empty)
    listed = st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank,
                      unique_by=lambda a: a % rank).map(lambda a: np.array(a, np.int64))
    return st.one_of(st.none(), empty, listed)


def reduction(dtype: str, *, min_side: int = 0, **element_kwargs):
    """A reduction sample; ``min_side=1`` avoids reducing over an empty set."""

    @st.composite
    def draw(draw_):
        data = draw_(arrays(dtype, shapes(min_side=min_side), **element_kwargs))
        axes = draw_(axes_input(data.ndim))
        attrs = {"keepdims": draw_(st.integers(0, 1)), "noop_with_empty_axes": draw_(st.integers(0, 1))}
        return Sample([data] if axes is None else [data, axes], attrs)

    return draw()


def sums(dtype: str, bound: float = 10):
    """Floats within ``bound``; integers over their whole range (sums and products wrap,
    the same in any order)."""
    if np.dtype(dtype).kind in "iu":
        return reduction(dtype)
    return reduction(dtype, min_value=-bound, max_value=bound)


def small(dtype: str):
    return reduction(dtype, min_value=-10, max_value=10)


samples("ReduceSum", REDUCE_NUMERIC, SUM_TOLERANCE)(sums)
samples("ReduceL1", REDUCE_NUMERIC, SUM_TOLERANCE)(sums)
samples("ReduceSumSquare", REDUCE_NUMERIC, SUM_TOLERANCE)(sums)
samples("ReduceProd", REDUCE_NUMERIC, SUM_TOLERANCE)(lambda dtype: sums(dtype, bound=2))
samples("ReduceL2", REDUCE_NUMERIC, SUM_TOLERANCE)(small)  # an integer root of a wrapped sum is undefined
samples("ReduceLogSum", dt.FLOATS, SUM_TOLERANCE)(small)
samples("ReduceLogSumExp", dt.FLOATS, SUM_TOLERANCE)(lambda dtype: reduction(dtype, min_value=-50, max_value=50))
samples("ReduceMax", REDUCE_ORDERED)(reduction)
samples("ReduceMin", REDUCE_ORDERED)(reduction)


@samples("ReduceMean", REDUCE_NUMERIC, SUM_TOLERANCE)
def reduce_mean(dtype):
    """An integer mean of no elements divides by zero: undefined, so not drawn."""
    if np.dtype(dtype).kind in "iu":
        return reduction(dtype, min_side=1, min_value=-1000, max_value=1000)
    return small(dtype)


def ordered_values(dtype: str):
    """Finite values, ±inf and small integers (so that ties occur); no nan, whose
    place in an order ONNX leaves open."""
    small = st.integers(0 if np.dtype(dtype).kind == "u" else -2, 2)
    special = st.sampled_from([np.inf, -np.inf]) if np.dtype(dtype).kind == "f" else st.nothing()
    return st.one_of(elements(dtype, special=False), small, special)


def along_axis(dtype: str):
    """Data of rank >= 1 whose chosen axis is not empty, and the axis (maybe negative)."""

    @st.composite
    def draw(draw_):
        shape = list(draw_(shapes(min_dims=1)))
        axis = draw_(st.integers(-len(shape), len(shape) - 1))
        shape[axis] = max(shape[axis], 1)
        data = draw_(hnp.arrays(np.dtype(dtype), tuple(shape), elements=ordered_values(dtype)))
        return data, axis

    return draw()


def arg_reduction(dtype: str):
    return st.tuples(along_axis(dtype), st.integers(0, 1), st.integers(0, 1)).map(
        lambda t: Sample([t[0][0]], {"axis": t[0][1], "keepdims": t[1], "select_last_index": t[2]}))


samples("ArgMax", dt.NUMERIC)(arg_reduction)
samples("ArgMin", dt.NUMERIC)(arg_reduction)


@samples("CumSum", REDUCE_NUMERIC, SUM_TOLERANCE)
def cumsum(dtype):
    """Any axis of data of rank >= 1, given as a 0-d int32 or int64 input."""

    @st.composite
    def draw(draw_):
        data = draw_(arrays(dtype, shapes(min_dims=1), min_value=-10, max_value=10))
        axis = np.array(draw_(st.integers(-data.ndim, data.ndim - 1)), draw_(st.sampled_from(dt.INDEX)))
        attrs = {"exclusive": draw_(st.integers(0, 1)), "reverse": draw_(st.integers(0, 1))}
        return Sample([data, axis], attrs)

    return draw()


@samples("CumProd", REDUCE_NUMERIC)
def cumprod(dtype):
    """Like CumSum's, with small factors so that float16 products stay finite."""

    @st.composite
    def draw(draw_):
        data = draw_(arrays(dtype, shapes(min_dims=1), min_value=-4, max_value=4))
        axis = np.array(draw_(st.integers(-data.ndim, data.ndim - 1)), draw_(st.sampled_from(dt.INDEX)))
        attrs = {"exclusive": draw_(st.integers(0, 1)), "reverse": draw_(st.integers(0, 1))}
        return Sample([data, axis], attrs)

    return draw()


@samples("TopK", dt.NUMERIC)
def topk(dtype):
    """K from 0 to the axis length, both directions, ties included. Only sorted=1 is
    drawn: with sorted=0 ONNX leaves the order of the results undefined."""

    @st.composite
    def draw(draw_):
        data, axis = draw_(along_axis(dtype))
        k = draw_(st.integers(0, data.shape[axis]))
        return Sample([data, np.array([k], np.int64)], {"axis": axis, "largest": draw_(st.integers(0, 1))})

    return draw()
