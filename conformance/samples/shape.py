"""Samples for the shape and data-movement ops."""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays, broadcast_shapes, elements, shapes

INDEX_DTYPES = st.sampled_from(dt.INDEX)


def int64s(values) -> np.ndarray:
    return np.array(list(values), dtype=np.int64)


def _axis(draw, rank: int) -> int:
    """An axis of a tensor of ``rank`` dims, negative half of the time."""
    axis = draw(st.integers(0, rank - 1))
    return axis - rank if draw(st.booleans()) else axis


def _scalar(dtype: str, **kwargs):
    return elements(dtype, **kwargs).map(lambda v: np.array(v, dtype=dtype))


# -- reshaping ---------------------------------------------------------------------------
@samples("Reshape", dt.ALL)
def reshape(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes()))
        target: list[int] = []
        for d in x.shape:  # merge neighbouring dims at random, then insert ones
            if target and draw_(st.booleans()):
                target[-1] *= d
            else:
                target.append(d)
        for _ in range(draw_(st.integers(0, 2))):
            target.insert(draw_(st.integers(0, len(target))), 1)
        allowzero = draw_(st.sampled_from([0, 1]))
        if any(d == 0 and (i >= x.ndim or x.shape[i] != 0) for i, d in enumerate(target)):
            allowzero = 1  # a literal 0 that does not sit where a copied 0 would
        resolved = list(target)
        if not allowzero:
            for i, d in enumerate(target[:x.ndim]):
                if d == x.shape[i] and draw_(st.booleans()):
                    target[i] = 0
        if target and draw_(st.booleans()):
            k = draw_(st.integers(0, len(target) - 1))
            if math.prod(resolved[:k] + resolved[k + 1:]) and not (allowzero and 0 in target):
                target[k] = -1
        return Sample([x, int64s(target)], {"allowzero": allowzero})

    return draw()


@samples("Flatten", dt.ALL)
def flatten(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes()))
        return Sample([x], {"axis": draw_(st.integers(-x.ndim, x.ndim))})

    return draw()


@samples("Transpose", dt.ALL)
def transpose(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes()))
        if not x.ndim or draw_(st.booleans()):
            return Sample([x])
        return Sample([x], {"perm": draw_(st.permutations(range(x.ndim)))})

    return draw()


@samples("Squeeze", dt.ALL)
def squeeze(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(max_side=2)))
        ones = [i for i, d in enumerate(x.shape) if d == 1]
        if not ones or draw_(st.booleans()):
            return Sample([x, None])
        axes = draw_(st.lists(st.sampled_from(ones), min_size=1, unique=True))
        return Sample([x, int64s(a - x.ndim if draw_(st.booleans()) else a for a in axes)])

    return draw()


@samples("Unsqueeze", dt.ALL)
def unsqueeze(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(max_dims=3)))
        rank = x.ndim + draw_(st.integers(1, 3))
        axes = draw_(st.lists(st.integers(0, rank - 1), min_size=rank - x.ndim, max_size=rank - x.ndim,
                              unique=True))
        return Sample([x, int64s(a - rank if draw_(st.booleans()) else a for a in axes)])

    return draw()


# -- joining and splitting -----------------------------------------------------------------
@samples("Concat", dt.ALL)
def concat(dtype):
    @st.composite
    def draw(draw_):
        base = list(draw_(shapes(min_dims=1)))
        axis = _axis(draw_, len(base))
        parts = []
        for _ in range(draw_(st.integers(1, 3))):
            base[axis] = draw_(st.integers(0, 3))
            parts.append(draw_(arrays(dtype, tuple(base))))
        return Sample(parts, {"axis": axis})

    return draw()


@samples("Split", dt.ALL)
def split(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1)))
        axis = _axis(draw_, x.ndim)
        dim = x.shape[axis]
        if draw_(st.booleans()):
            cuts = sorted(draw_(st.lists(st.integers(0, dim), max_size=3)))
            sizes = np.diff([0, *cuts, dim])
            return Sample([x, int64s(sizes)], {"axis": axis}, len(sizes))
        # ceil-sized chunks must leave a last chunk of at least zero
        n = draw_(st.integers(1, 4).filter(lambda k: dim - -(-dim // k) * (k - 1) >= 0))
        return Sample([x, None], {"axis": axis, "num_outputs": n}, n)

    return draw()


# -- slicing, gathering, scattering ---------------------------------------------------------
@samples("Slice", dt.ALL)
def slice_(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1)))
        index = draw_(INDEX_DTYPES)
        big = np.iinfo(index).max
        axes = draw_(st.lists(st.integers(0, x.ndim - 1), min_size=1, unique=True))
        starts, ends, steps = [], [], []
        for a in axes:
            dim = x.shape[a]
            bound = st.one_of(st.integers(-dim - 2, dim + 2), st.sampled_from([big, -big - 1]))
            starts.append(draw_(bound))
            ends.append(draw_(bound))
            steps.append(draw_(st.integers(-3, 3).filter(bool)))
        inputs = [x, np.array(starts, index), np.array(ends, index)]
        natural = axes == list(range(len(axes)))
        if not natural or draw_(st.booleans()):
            inputs.append(np.array([a - x.ndim if draw_(st.booleans()) else a for a in axes], index))
        if any(s != 1 for s in steps) or draw_(st.booleans()):
            inputs += [None] * (4 - len(inputs)) + [np.array(steps, index)]
        return Sample(inputs)

    return draw()


@samples("Gather", dt.ALL)
def gather(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1)))
        axis = _axis(draw_, x.ndim)
        dim = x.shape[axis]
        idx_shape = draw_(shapes(max_dims=2, max_side=3))
        if not dim:  # nothing to pick from: no indices
            idx_shape += (0,)
        index = draw_(INDEX_DTYPES)
        idx = draw_(arrays(index, idx_shape, min_value=-dim, max_value=max(dim - 1, 0)))
        return Sample([x, idx], {"axis": axis})

    return draw()


@samples("GatherElements", dt.ALL)
def gather_elements(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1, min_side=1)))
        axis = _axis(draw_, x.ndim)
        idx_shape = tuple(draw_(st.integers(0, 4)) if i == axis % x.ndim else d for i, d in enumerate(x.shape))
        dim = x.shape[axis]
        idx = draw_(arrays(draw_(INDEX_DTYPES), idx_shape, min_value=-dim, max_value=dim - 1))
        return Sample([x, idx], {"axis": axis})

    return draw()


@samples("ScatterND", dt.ALL)
def scatter_nd(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1, max_dims=3, min_side=1, max_side=4)))
        reduction = draw_(st.sampled_from(["none", "add", "mul", "max", "min"]))
        k = draw_(st.integers(1, x.ndim))
        batch = draw_(shapes(max_dims=2, max_side=3))
        cells = st.tuples(*(st.integers(-d, d - 1) for d in x.shape[:k]))
        rows = draw_(st.lists(cells, min_size=math.prod(batch), max_size=math.prod(batch),
                              unique_by=lambda c: tuple(i % d for i, d in zip(c, x.shape))
                              if reduction == "none" else None))
        indices = np.array(rows, dtype=np.int64).reshape(batch + (k,))
        updates = draw_(arrays(dtype, batch + x.shape[k:], min_value=-10, max_value=10))
        return Sample([x, indices, updates], {"reduction": reduction})

    return draw()


# -- broadcasting, tiling, padding ---------------------------------------------------------
@samples("Expand", dt.ALL)
def expand(dtype):
    @st.composite
    def draw(draw_):
        sa, sb = draw_(broadcast_shapes(2))
        return Sample([draw_(arrays(dtype, sa)), int64s(sb)])

    return draw()


@samples("Tile", dt.ALL)
def tile(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(max_dims=3, max_side=3)))
        repeats = draw_(st.lists(st.integers(0, 3), min_size=x.ndim, max_size=x.ndim))
        return Sample([x, int64s(repeats)])

    return draw()


@samples("Pad", dt.ALL)
def pad(dtype):
    @st.composite
    def draw(draw_):
        mode = draw_(st.sampled_from(["constant", "reflect", "edge", "wrap"]))
        x = draw_(arrays(dtype, shapes(min_dims=1, max_dims=3, min_side=0 if mode == "constant" else 1)))
        if draw_(st.booleans()):
            axes = draw_(st.lists(st.integers(0, x.ndim - 1), min_size=1, unique=True))
        else:
            axes = list(range(x.ndim))
        begins, ends = [], []
        for a in axes:
            dim = x.shape[a]
            if mode == "constant":
                b = draw_(st.integers(-dim, 3))
                e = draw_(st.integers(-dim - b, 3))
            else:
                high = dim - 1 if mode == "reflect" else dim if mode == "wrap" else 3
                b, e = draw_(st.integers(0, high)), draw_(st.integers(0, high))
            begins.append(b)
            ends.append(e)
        inputs = [x, int64s(begins + ends)]
        if mode == "constant" and draw_(st.booleans()):
            inputs.append(draw_(_scalar(dtype)))
        if axes != list(range(x.ndim)) or draw_(st.booleans()):
            index = draw_(INDEX_DTYPES)
            inputs += [None] * (3 - len(inputs)) + [np.array([a - x.ndim if draw_(st.booleans()) else a
                                                               for a in axes], index)]
        return Sample(inputs, {"mode": mode})

    return draw()


# -- shapes and constants ------------------------------------------------------------------
@samples("Shape", dt.ALL)
def shape(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes()))
        attrs = {}
        if draw_(st.booleans()):
            attrs["start"] = draw_(st.integers(-x.ndim, x.ndim))
        if draw_(st.booleans()):
            attrs["end"] = draw_(st.integers(-x.ndim, x.ndim))
        return Sample([x], attrs)

    return draw()


@samples("Size", dt.ALL)
def size(dtype):
    return arrays(dtype, shapes()).map(lambda x: Sample([x]))


@samples("ConstantOfShape", dt.ALL)
def constant_of_shape(dtype):
    @st.composite
    def draw(draw_):
        dims = int64s(draw_(shapes(max_dims=3)))
        if dtype == "float32" and draw_(st.booleans()):
            return Sample([dims])
        value = draw_(arrays(dtype, (1,)))
        return Sample([dims], {"value": value})

    return draw()


@samples("Constant", dt.ALL)
def constant(dtype):
    @st.composite
    def draw(draw_):
        value = draw_(arrays(dtype, shapes(max_dims=3)))
        choice = draw_(st.integers(0, 2))
        if dtype == "float32" and choice == 1:
            return Sample([], {"value_float": float(draw_(elements(dtype)))})
        if dtype == "float32" and choice == 2:
            return Sample([], {"value_floats": [float(v) for v in draw_(arrays(dtype, (draw_(st.integers(1, 4)),)))]})
        if dtype == "int64" and choice == 1:
            return Sample([], {"value_int": int(draw_(elements(dtype)))})
        if dtype == "int64" and choice == 2:
            return Sample([], {"value_ints": [int(v) for v in draw_(arrays(dtype, (draw_(st.integers(1, 4)),)))]})
        return Sample([], {"value": value})

    return draw()


@samples("Range", ("float16", "float32", "float64", "int16", "int32", "int64"))
def range_(dtype):
    @st.composite
    def draw(draw_):
        if np.dtype(dtype).kind == "i":
            start, limit = draw_(st.integers(-20, 20)), draw_(st.integers(-20, 20))
            delta = draw_(st.integers(-5, 5).filter(bool))
        else:
            finite = elements(dtype, special=False, min_value=-10, max_value=10)
            start, limit = draw_(finite), draw_(finite)
            delta = draw_(elements(dtype, special=False, min_value=0.25, max_value=4))
            delta = -delta if draw_(st.booleans()) else delta
        return Sample([np.array(v, dtype) for v in (start, limit, delta)])

    return draw()


# -- resizing ---------------------------------------------------------------------------
COORDINATE_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                    "asymmetric", "tf_crop_and_resize")
NEAREST_MODES = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


@samples("Resize", dt.ALL)
def resize(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=1, max_dims=4, min_side=1, max_side=4)))
        mode = "nearest" if dtype == "bool" else draw_(st.sampled_from(["nearest", "linear", "cubic"]))
        coord = draw_(st.sampled_from(COORDINATE_MODES))
        attrs = {"mode": mode, "coordinate_transformation_mode": coord}
        if mode == "nearest":
            attrs["nearest_mode"] = draw_(st.sampled_from(NEAREST_MODES))
        else:
            attrs["antialias"] = draw_(st.sampled_from([0, 1]))
            attrs["exclude_outside"] = draw_(st.sampled_from([0, 1]))
        if mode == "cubic":
            attrs["cubic_coeff_a"] = draw_(st.sampled_from([-0.75, -0.5, -1.0]))
        axes = list(range(x.ndim))
        if draw_(st.booleans()):
            axes = draw_(st.lists(st.integers(0, x.ndim - 1), min_size=1, unique=True))
            attrs["axes"] = axes
        roi = None
        if coord == "tf_crop_and_resize":
            ends = st.floats(-0.5, 1.5, width=16)
            roi = np.array([draw_(ends) for _ in range(2 * len(axes))],
                           dtype=draw_(st.sampled_from(dt.FLOATS)))
            attrs["extrapolation_value"] = draw_(st.sampled_from([0.0, -1.0, 2.5]))
        if draw_(st.booleans()):
            scales = draw_(st.lists(st.sampled_from([0.25, 0.5, 0.6, 0.75, 1.0, 1.3, 1.5, 2.0, 2.5, 3.0]),
                                    min_size=len(axes), max_size=len(axes)))
            return Sample([x, roi, np.array(scales, np.float32)], attrs)
        sizes = draw_(st.lists(st.integers(1, 6), min_size=len(axes), max_size=len(axes)))
        attrs["keep_aspect_ratio_policy"] = draw_(st.sampled_from(["stretch", "not_larger", "not_smaller"]))
        return Sample([x, roi, None, int64s(sizes)], attrs)

    return draw()


# -- rearranging blocks ------------------------------------------------------------------
@samples("DepthToSpace", dt.ALL)
def depth_to_space(dtype):
    @st.composite
    def draw(draw_):
        b = draw_(st.integers(1, 3))
        n, c, h, w = (draw_(st.integers(0, 2)), b * b * draw_(st.integers(1, 2)),
                      draw_(st.integers(0, 3)), draw_(st.integers(0, 3)))
        x = draw_(arrays(dtype, (n, c, h, w)))
        return Sample([x], {"blocksize": b, "mode": draw_(st.sampled_from(["DCR", "CRD"]))})

    return draw()


@samples("SpaceToDepth", dt.ALL)
def space_to_depth(dtype):
    @st.composite
    def draw(draw_):
        b = draw_(st.integers(1, 3))
        n, c, h, w = (draw_(st.integers(0, 2)), draw_(st.integers(1, 3)),
                      b * draw_(st.integers(0, 2)), b * draw_(st.integers(0, 2)))
        x = draw_(arrays(dtype, (n, c, h, w)))
        return Sample([x], {"blocksize": b, "mode": draw_(st.sampled_from(["DCR", "CRD"]))})

    return draw()


# -- masks and encodings -----------------------------------------------------------------
@samples("OneHot", dt.NUMERIC)
def one_hot(dtype):
    @st.composite
    def draw(draw_):
        depth = draw_(st.integers(1, 5))
        signed = np.dtype(dtype).kind != "u"
        values = st.integers(-depth - 1 if signed else 0, depth + 1)
        shape = draw_(shapes(max_dims=3))
        indices = np.array(draw_(st.lists(values, min_size=math.prod(shape), max_size=math.prod(shape))),
                           dtype=dtype).reshape(shape)
        depth_arr = np.array(depth, dtype=draw_(st.sampled_from(dt.NUMERIC)))
        value_dtype = draw_(st.sampled_from(dt.ALL))
        on_off = draw_(arrays(value_dtype, (2,)))
        return Sample([indices, depth_arr, on_off], {"axis": draw_(st.integers(-len(shape) - 1, len(shape)))})

    return draw()


@samples("Trilu", dt.ALL)
def trilu(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(min_dims=2)))
        inputs = [x]
        if draw_(st.booleans()):
            inputs.append(np.array(draw_(st.integers(-6, 6)), np.int64))
        return Sample(inputs, {"upper": draw_(st.sampled_from([0, 1]))})

    return draw()


@samples("Dropout", dt.FLOATS)
def dropout(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes()))
        n_outputs = draw_(st.integers(1, 2))
        if draw_(st.booleans()):  # training: a seeded mask, so that every run draws the same one
            ratio = np.array(draw_(st.sampled_from([0.0, 0.25, 0.5, 0.75])), dtype)
            return Sample([x, ratio, np.array(True)], {"seed": draw_(st.integers(0, 2**31 - 1))}, n_outputs)
        inputs = [x]
        if draw_(st.booleans()):
            inputs.append(np.array(draw_(st.sampled_from([0.0, 0.25, 0.5])), draw_(st.sampled_from(dt.FLOATS))))
            if draw_(st.booleans()):
                inputs.append(np.array(False))
        return Sample(inputs, {"seed": 0} if draw_(st.booleans()) else {}, n_outputs)

    return draw()
