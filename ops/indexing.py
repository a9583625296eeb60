"""Indexing ops: gathers, scatters, selections by condition or value."""
from __future__ import annotations

import math

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register
from .shapes import normalize_axes, normalize_axis

Types = list[TensorType | None]


def _typed(ctx: InferContext, shape, i: int = 0) -> TensorType | None:
    """A type with input ``i``'s dtype and the given shape (None if the dtype is unknown)."""
    dtype = ctx.dtype(i)
    return None if dtype is None else TensorType(dtype, shape)


def _wrap(indices: np.ndarray, size: int) -> np.ndarray:
    """Indices with negatives counted from the end, checked against ``size``."""
    indices = indices.astype(np.int64)
    if indices.size and (indices.min() < -size or indices.max() >= size):
        raise ShapeError(f"index out of range for a dimension of size {size}")
    return np.where(indices < 0, indices + size, indices)


# -- gathers and scatters ----------------------------------------------------------------
def gather_nd_shape(data: tuple, indices: tuple, batch_dims: int) -> tuple | None:
    """GatherND's output shape: the indices' batch and index dims, then data's rest."""
    if not indices or not isinstance(indices[-1], int):
        return None
    return tuple(indices[:-1]) + tuple(data[batch_dims + indices[-1]:])


@register
class GatherND(OpDef):
    name = "GatherND"
    inputs = (Param("data", "T"), Param("indices", "int64"))
    outputs = (Param("output", "T"),)
    attrs = {"batch_dims": Attr("int", 0)}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        data, indices = ctx.shape(0), ctx.shape(1)
        if data is None or indices is None:
            return [_typed(ctx, None)]
        return [_typed(ctx, gather_nd_shape(data, indices, ctx.attrs["batch_dims"]))]

    def reference(self, data, indices, *, batch_dims):
        b, m = batch_dims, indices.shape[-1]
        if data.shape[:b] != indices.shape[:b] or b + m > data.ndim:
            raise ShapeError(f"GatherND indices {list(indices.shape)} do not fit data {list(data.shape)}")
        batches = math.prod(data.shape[:b])
        flat_data = data.reshape((batches,) + data.shape[b:])
        flat_idx = indices.reshape(batches, math.prod(indices.shape[b:-1]), m)
        coords = tuple(_wrap(flat_idx[..., j], data.shape[b + j]) for j in range(m))
        picked = flat_data[(np.arange(batches)[:, None],) + coords]
        return picked.reshape(gather_nd_shape(data.shape, indices.shape, b))


_SCATTER_REDUCTIONS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


@register
class ScatterElements(OpDef):
    name = "ScatterElements"
    inputs = (Param("data", "T"), Param("indices", "Tind"), Param("updates", "T"))
    outputs = (Param("output", "T"),)
    attrs = {"axis": Attr("int", 0), "reduction": Attr("string", "none")}
    constraints = {"T": dt.ALL, "Tind": dt.INDEX}

    def infer(self, ctx: InferContext) -> Types:
        return [_typed(ctx, ctx.shape(0))]

    def reference(self, data, indices, updates, *, axis, reduction):
        """Writes (or with ``reduction`` combines, in index order) each update into
        the data element its index names along ``axis``."""
        axis = normalize_axis(axis, data.ndim)
        if indices.shape != updates.shape or indices.ndim != data.ndim:
            raise ShapeError("ScatterElements indices and updates must share a shape of data's rank")
        where = list(np.indices(indices.shape, sparse=True))
        where[axis] = _wrap(indices, data.shape[axis])
        out = data.copy()
        if reduction == "none":
            out[tuple(where)] = updates
        elif reduction in _SCATTER_REDUCTIONS:
            _SCATTER_REDUCTIONS[reduction].at(out, tuple(where), updates)
        else:
            raise ShapeError(f"ScatterElements reduction '{reduction}' is unknown")
        return out


@register
class TensorScatter(OpDef):
    """A KV-cache update: for each batch entry b, ``update``'s slices along ``axis``
    overwrite ``past_cache`` from position ``write_indices[b]`` (0 when omitted) on;
    "circular" mode wraps positions modulo the cache length, "linear" must stay inside."""

    name = "TensorScatter"
    inputs = (Param("past_cache", "T"), Param("update", "T"), Param("write_indices", "int64", optional=True))
    outputs = (Param("present_cache", "T"),)
    attrs = {"mode": Attr("string", "linear"), "axis": Attr("int", -2)}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        if ctx.attrs["mode"] not in ("linear", "circular"):
            raise ShapeError(f"TensorScatter mode '{ctx.attrs['mode']}' is not linear or circular", ctx.node.name)
        return [_typed(ctx, ctx.shape(0))]

    def reference(self, past_cache, update, write_indices=None, *, mode, axis):
        if mode not in ("linear", "circular"):
            raise ShapeError(f"TensorScatter mode '{mode}' is not linear or circular")
        ax = normalize_axis(axis, past_cache.ndim)
        length, seq = past_cache.shape[ax], update.shape[ax] if update.ndim > ax else -1
        others = [d for i, d in enumerate(past_cache.shape) if i != ax]
        if ax == 0 or update.ndim != past_cache.ndim or not 0 <= seq <= length or others != [
                d for i, d in enumerate(update.shape) if i != ax]:
            raise ShapeError(f"TensorScatter update {list(update.shape)} does not fit cache "
                             f"{list(past_cache.shape)} along axis {axis} (batch axis 0 excluded)")
        batch = past_cache.shape[0]
        starts = np.zeros(batch, np.int64) if write_indices is None else write_indices.astype(np.int64)
        if starts.shape != (batch,):
            raise ShapeError(f"TensorScatter write_indices {list(starts.shape)} is not one per batch entry ({batch})")
        positions = starts[:, None] + np.arange(seq)
        if mode == "circular" and length:
            positions = positions % length
        elif seq and ((positions < 0) | (positions >= length)).any():
            raise ShapeError(f"TensorScatter writes past the cache length {length} in linear mode")
        out = past_cache.copy()
        for b in range(batch):
            np.moveaxis(out[b], ax - 1, 0)[positions[b]] = np.moveaxis(update[b], ax - 1, 0)
        return out


# -- selections ------------------------------------------------------------------------------
@register
class NonZero(OpDef):
    name = "NonZero"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "int64"),)
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        return [TensorType("int64", None if shape is None else (len(shape), None))]

    def reference(self, x):
        if x.ndim == 0:
            return np.zeros((0, int(bool(x))), np.int64)
        return np.array(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


@register
class Compress(OpDef):
    name = "Compress"
    inputs = (Param("input", "T"), Param("condition", "T1"))
    outputs = (Param("output", "T"),)
    attrs = {"axis": Attr("int", None)}
    constraints = {"T": dt.ALL, "T1": ("bool",)}

    def infer(self, ctx: InferContext) -> Types:
        shape, axis = ctx.shape(0), ctx.attrs["axis"]
        if axis is None:
            return [_typed(ctx, (None,))]
        if shape is None:
            return [_typed(ctx, None)]
        axis = normalize_axis(axis, len(shape), ctx.node.name)
        return [_typed(ctx, tuple(shape[:axis]) + (None,) + tuple(shape[axis + 1:]))]

    def reference(self, x, condition, *, axis):
        """Keeps the slices along ``axis`` (of the flattened input without one) whose
        condition is true; a condition shorter than the axis drops the rest."""
        if axis is None:
            x, axis = x.reshape(-1), 0
        axis = normalize_axis(axis, x.ndim)
        condition = condition.reshape(-1)
        if condition[x.shape[axis]:].any():
            raise ShapeError("Compress condition selects beyond the end of the axis")
        keep = np.nonzero(condition[:x.shape[axis]])[0]
        return np.take(x, keep, axis=axis)


@register
class Unique(OpDef):
    name = "Unique"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"), Param("indices", "int64", optional=True),
               Param("inverse_indices", "int64", optional=True), Param("counts", "int64", optional=True))
    attrs = {"axis": Attr("int", None), "sorted": Attr("int", 1)}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        shape, axis = ctx.shape(0), ctx.attrs["axis"]
        if axis is None:
            y = (None,)
        elif shape is None:
            y = None
        else:
            axis = normalize_axis(axis, len(shape), ctx.node.name)
            y = tuple(shape[:axis]) + (None,) + tuple(shape[axis + 1:])
        inverse = (None,)
        if shape is not None and axis is not None:
            inverse = (shape[axis],)
        elif shape is not None and all(isinstance(d, int) for d in shape):
            inverse = (math.prod(shape),)
        types = [_typed(ctx, y), TensorType("int64", (None,)), TensorType("int64", inverse),
                 TensorType("int64", (None,))]
        return types[:len(ctx.node.outputs)]

    def reference(self, x, *, axis, sorted):
        """Unique values (or slices along ``axis``), sorted or in order of first
        occurrence, with first indices, the inverse mapping and counts."""
        if axis is None:
            x, axis = x.reshape(-1), 0
        axis = normalize_axis(axis, x.ndim)
        y, first, inverse, counts = np.unique(x, return_index=True, return_inverse=True,
                                              return_counts=True, axis=axis)
        inverse = inverse.reshape(-1)
        if not sorted:
            order = np.argsort(first, kind="stable")
            y, first, counts = np.take(y, order, axis=axis), first[order], counts[order]
            rank = np.empty_like(order)
            rank[order] = np.arange(order.size)
            inverse = rank[inverse]
        return (y, first.astype(np.int64), inverse.astype(np.int64), counts.astype(np.int64))


@register
class ReverseSequence(OpDef):
    name = "ReverseSequence"
    inputs = (Param("input", "T"), Param("sequence_lens", "int64"))
    outputs = (Param("Y", "T"),)
    attrs = {"batch_axis": Attr("int", 1), "time_axis": Attr("int", 0)}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        return [_typed(ctx, ctx.shape(0))]

    def reference(self, x, sequence_lens, *, batch_axis, time_axis):
        """Reverses the first ``sequence_lens[b]`` steps along the time axis of each batch entry."""
        if {batch_axis, time_axis} != {0, 1} or x.ndim < 2:
            raise ShapeError("ReverseSequence needs batch_axis and time_axis to be 0 and 1 of a rank >= 2 input")
        moved = np.moveaxis(x, (batch_axis, time_axis), (0, 1))
        steps = np.arange(moved.shape[1])
        lens = np.clip(sequence_lens.astype(np.int64), 0, moved.shape[1])[:, None]
        source = np.where(steps < lens, lens - 1 - steps, steps)
        source = source.reshape(source.shape + (1,) * (moved.ndim - 2))
        picked = np.take_along_axis(moved, np.broadcast_to(source, moved.shape), axis=1)
        return np.moveaxis(picked, (0, 1), (batch_axis, time_axis))


# -- constructions ---------------------------------------------------------------------------
@register
class EyeLike(OpDef):
    name = "EyeLike"
    inputs = (Param("input", "T1"),)
    outputs = (Param("output", "T2"),)
    attrs = {"dtype": Attr("int", None), "k": Attr("int", 0)}
    constraints = {"T1": dt.ALL, "T2": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        code = ctx.attrs["dtype"]
        dtype = ctx.dtype(0) if code is None else dt.from_onnx(code)
        return [None if dtype is None else TensorType(dtype, ctx.shape(0))]

    def reference(self, x, *, dtype, k):
        """Ones on the k-th diagonal of a matrix shaped like the 2-D input."""
        if x.ndim != 2:
            raise ShapeError(f"EyeLike needs a 2-D input, got rank {x.ndim}")
        out_dtype = x.dtype if dtype is None else dt.to_numpy(dt.from_onnx(dtype))
        return np.eye(x.shape[0], x.shape[1], k, dtype=out_dtype)


def _crop_pad_axes(rank: int, axes, n: int) -> list[int]:
    axes = list(range(rank)) if axes is None else normalize_axes(axes, rank)
    if len(axes) != n:
        raise ShapeError(f"CenterCropPad has {n} sizes for {len(axes)} axes")
    return axes


@register
class CenterCropPad(OpDef):
    name = "CenterCropPad"
    inputs = (Param("input_data", "T"), Param("shape", "Tind"))
    outputs = (Param("output_data", "T"),)
    attrs = {"axes": Attr("ints", None)}
    constraints = {"T": dt.ALL, "Tind": dt.INDEX}

    def infer(self, ctx: InferContext) -> Types:
        shape, sizes = ctx.shape(0), ctx.value(1)
        if shape is None:
            return [_typed(ctx, None)]
        out = list(shape)
        if sizes is None:
            axes = range(len(shape)) if ctx.attrs["axes"] is None else normalize_axes(
                ctx.attrs["axes"], len(shape), ctx.node.name)
            for a in axes:
                out[a] = None
            return [_typed(ctx, tuple(out))]
        sizes = [int(s) for s in sizes.reshape(-1)]
        for a, s in zip(_crop_pad_axes(len(shape), ctx.attrs["axes"], len(sizes)), sizes):
            out[a] = s
        return [_typed(ctx, tuple(out))]

    def reference(self, x, shape, *, axes):
        """Crops each named axis to its size around the centre, or pads it with zeros
        around the input (the odd element goes to the end)."""
        sizes = [int(s) for s in shape.reshape(-1)]
        out_shape, src, dst = list(x.shape), [slice(None)] * x.ndim, [slice(None)] * x.ndim
        for a, s in zip(_crop_pad_axes(x.ndim, axes, len(sizes)), sizes):
            dim = x.shape[a]
            out_shape[a] = s
            if s < dim:
                begin = (dim - s) // 2
                src[a] = slice(begin, begin + s)
            elif s > dim:
                begin = (s - dim) // 2
                dst[a] = slice(begin, begin + dim)
        out = np.zeros(out_shape, x.dtype)
        out[tuple(dst)] = x[tuple(src)]
        return out


# -- blocks and matrices ---------------------------------------------------------------------
def col2im_blocks(image: list[int], block: list[int], dilations: list[int], pads: list[int],
                  strides: list[int]) -> list[int]:
    """How many sliding blocks fit along each image axis."""
    n = len(image)
    return [(image[i] + pads[i] + pads[i + n] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1
            for i in range(n)]


@register
class Col2Im(OpDef):
    name = "Col2Im"
    inputs = (Param("input", "T"), Param("image_shape", "int64"), Param("block_shape", "int64"))
    outputs = (Param("output", "T"),)
    attrs = {"dilations": Attr("ints", None), "pads": Attr("ints", None), "strides": Attr("ints", None)}
    constraints = {"T": dt.NUMERIC}

    def infer(self, ctx: InferContext) -> Types:
        shape, image, block = ctx.shape(0), ctx.value(1), ctx.value(2)
        batch = None if shape is None else shape[0]
        channels = None
        if shape is not None and isinstance(shape[1], int) and block is not None:
            channels = shape[1] // max(math.prod(int(b) for b in block.reshape(-1)), 1)
        if image is None:
            n = ctx.shape(1)
            return [_typed(ctx, None if n is None or not isinstance(n[0], int) else (batch, channels) + (None,) * n[0])]
        return [_typed(ctx, (batch, channels) + tuple(int(i) for i in image.reshape(-1)))]

    def reference(self, x, image_shape, block_shape, *, dilations, pads, strides):
        """Sums the columns of sliding blocks (N, C*prod(block), L) back into an image
        (N, C, *image_shape); overlapping blocks add up."""
        image = [int(i) for i in image_shape.reshape(-1)]
        block = [int(b) for b in block_shape.reshape(-1)]
        n = len(image)
        dilations = [1] * n if dilations is None else list(dilations)
        strides = [1] * n if strides is None else list(strides)
        pads = [0] * 2 * n if pads is None else list(pads)
        counts = col2im_blocks(image, block, dilations, pads, strides)
        size = math.prod(block)
        if x.ndim != 3 or x.shape[1] % size or x.shape[2] != math.prod(counts) or min(counts) < 1:
            raise ShapeError(f"Col2Im input {list(x.shape)} does not hold blocks {block} of image {image}")
        cols = x.reshape((x.shape[0], x.shape[1] // size) + tuple(block) + tuple(counts))
        padded = np.zeros(cols.shape[:2] + tuple(image[i] + pads[i] + pads[i + n] for i in range(n)), x.dtype)
        for offset in np.ndindex(*block):
            window = tuple(slice(o * d, o * d + (c - 1) * s + 1, s)
                           for o, d, c, s in zip(offset, dilations, counts, strides))
            padded[(slice(None), slice(None)) + window] += cols[(slice(None), slice(None)) + offset]
        return padded[(slice(None), slice(None)) + tuple(slice(pads[i], pads[i] + image[i]) for i in range(n))]


@register
class Det(OpDef):
    name = "Det"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        return [_typed(ctx, None if shape is None else tuple(shape[:-2]))]

    def reference(self, x):
        """Determinants of the trailing square matrices."""
        if x.ndim < 2 or x.shape[-1] != x.shape[-2]:
            raise ShapeError(f"Det needs square matrices, got shape {list(x.shape)}")
        return np.asarray(np.linalg.det(x.astype(np.float64)), dtype=x.dtype)
