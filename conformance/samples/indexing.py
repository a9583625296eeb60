"""Samples for the indexing ops."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays, shapes


def _indices(draw, shape, size: int, dtype: str = "int64") -> np.ndarray:
    """Indices into a dim of ``size`` (negative ones too), of the given shape."""
    return draw(arrays(dtype, shape, min_value=-size, max_value=size - 1))


@samples("GatherND", dt.ALL)
def gather_nd(dtype):
    @st.composite
    def draw(draw_):
        data = draw_(arrays(dtype, shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)))
        b = draw_(st.integers(0, data.ndim - 1))
        m = draw_(st.integers(1, data.ndim - b))
        middle = draw_(shapes(max_dims=2, max_side=3))
        cols = [_indices(draw_, data.shape[:b] + middle + (1,), data.shape[b + j]) for j in range(m)]
        return Sample([data, np.concatenate(cols, axis=-1)], {"batch_dims": b})

    return draw()


@samples("ScatterElements", dt.ALL)
def scatter_elements(dtype):
    @st.composite
    def draw(draw_):
        data = draw_(arrays(dtype, shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)))
        axis = draw_(st.integers(-data.ndim, data.ndim - 1))
        shape = tuple(draw_(st.integers(0, d)) for d in data.shape)
        reduction = draw_(st.sampled_from(["none", "add", "mul", "max", "min"]))
        if reduction == "none":  # one update per element: duplicate writes are unspecified
            shape = shape[:axis % data.ndim] + (min(1, shape[axis]),) + shape[axis % data.ndim + 1:]
        indices = _indices(draw_, shape, data.shape[axis], draw_(st.sampled_from(dt.INDEX)))
        updates = draw_(arrays(dtype, shape))
        return Sample([data, indices, updates], {"axis": axis, "reduction": reduction})

    return draw()


@samples("TensorScatter", dt.ALL)
def tensor_scatter(dtype):
    """Caches of rank 2 to 4, any axis but the batch axis (negative too), updates as
    long as the cache at most, write positions inside the cache in linear mode and
    anywhere below twice its length in circular mode, or omitted."""

    @st.composite
    def draw(draw_):
        cache = draw_(arrays(dtype, shapes(min_dims=2, max_dims=4, min_side=1, max_side=4)))
        ax = draw_(st.integers(1, cache.ndim - 1))
        length = cache.shape[ax]
        seq = draw_(st.integers(0, length))
        update = draw_(arrays(dtype, cache.shape[:ax] + (seq,) + cache.shape[ax + 1:]))
        mode = draw_(st.sampled_from(["linear", "circular"]))
        top = length - seq if mode == "linear" else 2 * length - 1
        inputs = [cache, update]
        if draw_(st.booleans()):
            inputs.append(np.array(draw_(st.lists(st.integers(0, top), min_size=cache.shape[0],
                                                  max_size=cache.shape[0])), np.int64))
        return Sample(inputs, {"mode": mode, "axis": draw_(st.sampled_from([ax, ax - cache.ndim]))})

    return draw()


@samples("NonZero", dt.ALL)
def non_zero(dtype):
    return arrays(dtype, shapes(min_dims=1), min_value=-2, max_value=2).map(lambda x: Sample([x]))


@samples("Compress", dt.ALL)
def compress(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1)))
        axis = draw_(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
        length = x.size if axis is None else x.shape[axis]
        condition = draw_(arrays("bool", (draw_(st.integers(0, length)),)))
        return Sample([x, condition], {} if axis is None else {"axis": axis})

    return draw()


@samples("Unique", dt.ALL)
def unique(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(max_dims=3, max_side=4), special=False, min_value=-3, max_value=3))
        attrs = {"sorted": draw_(st.sampled_from([0, 1]))}
        if x.ndim and draw_(st.booleans()):
            attrs["axis"] = draw_(st.integers(-x.ndim, x.ndim - 1))
        return Sample([x], attrs)

    return draw()


@samples("ReverseSequence", dt.ALL)
def reverse_sequence(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=2, max_dims=4, min_side=1)))
        batch_axis = draw_(st.sampled_from([0, 1]))
        lens = draw_(arrays("int64", (x.shape[batch_axis],), min_value=1, max_value=x.shape[1 - batch_axis]))
        return Sample([x, lens], {"batch_axis": batch_axis, "time_axis": 1 - batch_axis})

    return draw()


@samples("EyeLike", dt.ALL)
def eye_like(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=2, max_dims=2)))
        attrs = {"k": draw_(st.integers(-4, 4))}
        if draw_(st.booleans()):
            attrs["dtype"] = dt.onnx_code(draw_(st.sampled_from(dt.ALL)))
        return Sample([x], attrs)

    return draw()


@samples("CenterCropPad", dt.ALL)
def center_crop_pad(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1)))
        axes = None
        if draw_(st.booleans()):
            axes = draw_(st.lists(st.integers(0, x.ndim - 1), min_size=1, unique=True))
        n = x.ndim if axes is None else len(axes)
        sizes = np.array(draw_(st.lists(st.integers(0, 6), min_size=n, max_size=n)),
                         dtype=draw_(st.sampled_from(dt.INDEX)))
        return Sample([x, sizes], {} if axes is None else {"axes": [a - x.ndim for a in axes]})

    return draw()


@samples("Col2Im", dt.NUMERIC)
def col2im(dtype):
    @st.composite
    def draw(draw_):
        n = draw_(st.integers(1, 3))
        block = [draw_(st.integers(1, 3)) for _ in range(n)]
        dilations = [draw_(st.integers(1, 2)) for _ in range(n)]
        strides = [draw_(st.integers(1, 2)) for _ in range(n)]
        pads = [draw_(st.integers(0, 1)) for _ in range(2 * n)]
        image = [draw_(st.integers(max(1, dilations[i] * (block[i] - 1) + 1 - pads[i] - pads[i + n]), 5))
                 for i in range(n)]
        counts = [(image[i] + pads[i] + pads[i + n] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1
                  for i in range(n)]
        channels = draw_(st.integers(1, 2)) * int(np.prod(block))
        x = draw_(arrays(dtype, (draw_(st.integers(1, 2)), channels, int(np.prod(counts))),
                         min_value=-100, max_value=100))
        attrs = {"dilations": dilations, "pads": pads, "strides": strides}
        return Sample([x, np.array(image, np.int64), np.array(block, np.int64)], attrs)

    return draw()


@samples("Det", dt.FLOATS, {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5), "float64": (1e-9, 1e-10)})
def det(dtype):
    @st.composite
    def draw(draw_):
        k = draw_(st.integers(1, 4))
        batch = draw_(st.lists(st.integers(0, 3), max_size=2))
        return Sample([draw_(arrays(dtype, tuple(batch) + (k, k), special=False, min_value=-3, max_value=3))])

    return draw()
