"""Shape and data-movement ops: reshaping, transposing, slicing, gathering, scattering,
padding, tiling, resizing, and the small ops that build shapes and constants."""
from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import Dim, TensorType

from .base import Attr, Decomposer, InferContext, OpDef, Param
from .registry import register
from .shapes import Shape as Dims
from .shapes import broadcast, is_static, mul_dims, normalize_axes, normalize_axis

Types = list[TensorType | None]


# -- helpers ---------------------------------------------------------------------------
def const_ints(value: np.ndarray | None) -> list[int] | None:
    """The entries of a constant integer tensor as Python ints (None stays None)."""
    return None if value is None else [int(v) for v in np.asarray(value).reshape(-1)]


def _typed(ctx: InferContext, shape: Dims | None, i: int = 0) -> TensorType | None:
    """A type with input ``i``'s dtype and the given shape (None if the dtype is unknown)."""
    dtype = ctx.dtype(i)
    return None if dtype is None else TensorType(dtype, shape)


def _unknown_dims(n: int | None) -> Dims | None:
    return None if n is None else (None,) * n


def _vector_length(ctx: InferContext, i: int) -> int | None:
    """The length of a 1-D input from its type, or None."""
    shape = ctx.shape(i)
    if shape is None or len(shape) != 1 or not isinstance(shape[0], int):
        return None
    return shape[0]


def flatten_axis(axis: int, rank: int, node: str | None = None) -> int:
    """Flatten's axis in [0, rank]; a negative one counts from the back (axis + rank)."""
    if not -rank <= axis <= rank:
        raise ShapeError(f"Flatten axis {axis} is out of range for rank {rank}", node)
    return axis + rank if axis < 0 else axis


def _split_dims(dims: Sequence[Dim]) -> tuple[int, list[str]] | None:
    """A shape's product as (known integer factor, sorted symbols); None if a dim is unknown."""
    total, symbols = 1, []
    for d in dims:
        if d is None:
            return None
        if isinstance(d, str):
            symbols.append(d)
        else:
            total *= d
    return total, sorted(symbols)


def reshape_shape(in_shape: Dims | None, target: Sequence[int], allowzero: int,
                  node: str | None = None) -> Dims:
    """The output shape of Reshape: 0 copies an input dim (unless allowzero), -1 is inferred."""
    if allowzero and 0 in target and -1 in target:
        raise ShapeError("Reshape with allowzero=1 cannot use both 0 and -1", node)
    if list(target).count(-1) > 1:
        raise ShapeError("Reshape shape has more than one -1", node)
    out: list[Dim] = []
    for i, t in enumerate(target):
        if t == 0 and not allowzero:
            if in_shape is not None and i >= len(in_shape):
                raise ShapeError(f"Reshape shape copies dim {i} of a rank-{len(in_shape)} input", node)
            out.append(None if in_shape is None else in_shape[i])
        elif t < -1:
            raise ShapeError(f"Reshape shape has invalid entry {t}", node)
        else:
            out.append(t)
    if -1 not in out:
        if is_static(in_shape) and is_static(tuple(out)) and mul_dims(in_shape) != mul_dims(out):
            raise ShapeError(f"cannot reshape {list(in_shape)} into {out}", node)
        return tuple(out)
    k = out.index(-1)
    total = None if in_shape is None else _split_dims(in_shape)
    rest = _split_dims(out[:k] + out[k + 1:])
    inferred: Dim = None
    # the symbols must cancel: N*3*4 into (N, -1) gives 12
    if total is not None and rest is not None and rest[0] != 0 and total[1] == rest[1]:
        if total[0] % rest[0]:
            raise ShapeError(f"cannot reshape {list(in_shape)} into {list(target)}", node)
        inferred = total[0] // rest[0]
    out[k] = inferred
    return tuple(out)


def _slice_params(rank: int, starts: Sequence[int], ends: Sequence[int], axes: Sequence[int] | None,
                  steps: Sequence[int] | None, node: str | None = None) -> dict[int, tuple[int, int, int]]:
    """Slice's (start, end, step) per normalized axis."""
    axes = list(range(len(starts))) if axes is None else normalize_axes(axes, rank, node)
    steps = [1] * len(starts) if steps is None else list(steps)
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise ShapeError("Slice starts, ends, axes and steps differ in length", node)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"Slice axes {axes} repeat an axis", node)
    if 0 in steps:
        raise ShapeError("Slice step cannot be 0", node)
    return {a: (s, e, st) for a, s, e, st in zip(axes, starts, ends, steps)}


def _pad_widths(rank: int, pads: Sequence[int], axes: Sequence[int] | None,
                node: str | None = None) -> list[tuple[int, int]]:
    """Pad's (begin, end) per axis; the pads list holds every begin, then every end."""
    axes = list(range(rank)) if axes is None else normalize_axes(axes, rank, node)
    if len(pads) != 2 * len(axes):
        raise ShapeError(f"Pad needs {2 * len(axes)} pads for {len(axes)} axes, got {len(pads)}", node)
    widths = [(0, 0)] * rank
    for i, a in enumerate(axes):
        widths[a] = (pads[i], pads[len(axes) + i])
    return widths


def _shape_range(rank: int, start: int, end: int | None) -> tuple[int, int]:
    """Shape's [start, end) after adding the rank to negatives and clamping to [0, rank]."""
    def clamp(v: int) -> int:
        return min(max(v + rank if v < 0 else v, 0), rank)

    return clamp(start), clamp(rank if end is None else end)


def _range_length(start, limit, delta) -> int:
    """max(ceil((limit - start) / delta), 0), exact for integers."""
    if isinstance(start, int) and isinstance(limit, int) and isinstance(delta, int):
        return max(-((start - limit) // delta), 0)
    return max(math.ceil((limit - start) / delta), 0)


# -- reshaping and permuting -------------------------------------------------------------
@register
class Reshape(OpDef):
    name = "Reshape"
    inputs = (Param("data", "T"), Param("shape", "int64"))
    outputs = (Param("reshaped", "T"),)
    attrs = {"allowzero": Attr("int", 0)}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        target = const_ints(ctx.value(1))
        if target is None:
            return [_typed(ctx, _unknown_dims(_vector_length(ctx, 1)))]
        return [_typed(ctx, reshape_shape(ctx.shape(0), target, ctx.attrs["allowzero"], ctx.node.name))]

    def reference(self, data, shape, *, allowzero):
        out = reshape_shape(data.shape, const_ints(shape), allowzero)
        if None in out:
            raise ShapeError(f"Reshape of {list(data.shape)} into {const_ints(shape)} is ambiguous")
        return data.reshape(out)


@register
class Flatten(OpDef):
    name = "Flatten"
    inputs = (Param("input", "T"),)
    outputs = (Param("output", "T"),)
    attrs = {"axis": Attr("int", 1)}
    constraints = {"T": dt.ALL}
    composite = True

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        if shape is None:
            return [_typed(ctx, (None, None))]
        axis = flatten_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
        return [_typed(ctx, (mul_dims(shape[:axis]), mul_dims(shape[axis:])))]

    def reference(self, x, *, axis):
        axis = flatten_axis(axis, x.ndim)
        return x.reshape(math.prod(x.shape[:axis]), math.prod(x.shape[axis:]))

    def decompose(self, d: Decomposer) -> None:
        t = d.types[0]
        axis = d.attrs["axis"]
        if t is not None and t.is_static:
            axis = flatten_axis(axis, len(t.shape), d.node.name)
            shape = [math.prod(t.shape[:axis]), math.prod(t.shape[axis:])]
            d.op("Reshape", d.inputs[0], d.const(shape, "int64"), outputs=d.outputs, allowzero=1)
            return
        head = d.op("ReduceProd", d.op("Shape", d.inputs[0], end=axis), keepdims=1)
        tail = d.op("ReduceProd", d.op("Shape", d.inputs[0], start=axis), keepdims=1)
        shape = d.op("Concat", head, tail, axis=0)
        d.op("Reshape", d.inputs[0], shape, outputs=d.outputs, allowzero=1)


@register
class Transpose(OpDef):
    name = "Transpose"
    inputs = (Param("data", "T"),)
    outputs = (Param("transposed", "T"),)
    attrs = {"perm": Attr("ints", None)}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        if shape is None:
            return [_typed(ctx, None)]
        perm = self._perm(ctx.attrs["perm"], len(shape), ctx.node.name)
        return [_typed(ctx, tuple(shape[p] for p in perm))]

    @staticmethod
    def _perm(perm: Sequence[int] | None, rank: int, node: str | None = None) -> list[int]:
        if perm is None:
            return list(range(rank))[::-1]
        perm = normalize_axes(perm, rank, node)
        if sorted(perm) != list(range(rank)):
            raise ShapeError(f"Transpose perm {list(perm)} is not a permutation of {rank} axes", node)
        return perm

    def reference(self, data, *, perm):
        return np.transpose(data, self._perm(perm, data.ndim))


def _squeeze_axes(shape: Dims, axes: Sequence[int] | None, node: str | None = None) -> list[int]:
    """The axes Squeeze removes: the given ones (each must be 1), or every static 1."""
    if axes is None:
        if not is_static(shape):
            raise ShapeError("Squeeze without axes needs a static input shape", node)
        return [i for i, d in enumerate(shape) if d == 1]
    axes = normalize_axes(axes, len(shape), node)
    for a in axes:
        if isinstance(shape[a], int) and shape[a] != 1:
            raise ShapeError(f"Squeeze axis {a} has size {shape[a]}, not 1", node)
    return sorted(set(axes))


def _unsqueeze_shape(shape: Dims, axes: Sequence[int], node: str | None = None) -> Dims:
    rank = len(shape) + len(axes)
    axes = normalize_axes(axes, rank, node)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"Unsqueeze axes {list(axes)} repeat an axis", node)
    dims = iter(shape)
    return tuple(1 if i in axes else next(dims) for i in range(rank))


def _reshape_or_gather(d: Decomposer, out_shape: Dims, picks: list[int]) -> None:
    """Reshape the input to ``out_shape``: with a constant when it is static, else with the
    input's runtime shape (with a trailing 1 appended) gathered at ``picks``."""
    if is_static(out_shape):
        d.op("Reshape", d.inputs[0], d.const(list(out_shape), "int64"), outputs=d.outputs, allowzero=1)
        return
    dims = d.op("Concat", d.op("Shape", d.inputs[0]), d.const([1], "int64"), axis=0)
    shape = d.op("Gather", dims, d.const(picks, "int64"), axis=0)
    d.op("Reshape", d.inputs[0], shape, outputs=d.outputs, allowzero=1)


@register
class Squeeze(OpDef):
    name = "Squeeze"
    inputs = (Param("data", "T"), Param("axes", "int64", optional=True))
    outputs = (Param("squeezed", "T"),)
    constraints = {"T": dt.ALL}
    composite = True

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        axes = const_ints(ctx.value(1))
        if shape is None or (ctx.has(1) and axes is None) or (axes is None and not is_static(shape)):
            return [_typed(ctx, None)]
        drop = _squeeze_axes(shape, axes, ctx.node.name)
        return [_typed(ctx, tuple(d for i, d in enumerate(shape) if i not in drop))]

    def reference(self, data, axes=None):
        drop = _squeeze_axes(data.shape, const_ints(axes))
        return np.squeeze(data, axis=tuple(drop))

    def decompose(self, d: Decomposer) -> None:
        rank = d.rank(0)
        axes = const_ints(d.value(1))
        if len(d.inputs) > 1 and d.inputs[1] and axes is None:
            raise ShapeError("Squeeze needs constant axes to decompose", d.node.name)
        shape = d.types[0].shape
        drop = _squeeze_axes(shape, axes, d.node.name)
        keep = [i for i in range(rank) if i not in drop]
        _reshape_or_gather(d, tuple(shape[i] for i in keep), keep)


@register
class Unsqueeze(OpDef):
    name = "Unsqueeze"
    inputs = (Param("data", "T"), Param("axes", "int64"))
    outputs = (Param("expanded", "T"),)
    constraints = {"T": dt.ALL}
    composite = True

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        axes = const_ints(ctx.value(1))
        if shape is None:
            return [_typed(ctx, None)]
        if axes is None:
            n = _vector_length(ctx, 1)
            return [_typed(ctx, _unknown_dims(None if n is None else len(shape) + n))]
        return [_typed(ctx, _unsqueeze_shape(shape, axes, ctx.node.name))]

    def reference(self, data, axes):
        return data.reshape(_unsqueeze_shape(data.shape, const_ints(axes)))

    def decompose(self, d: Decomposer) -> None:
        rank = d.rank(0)
        axes = const_ints(d.value(1))
        if axes is None:
            raise ShapeError("Unsqueeze needs constant axes to decompose", d.node.name)
        out_shape = _unsqueeze_shape(d.types[0].shape, axes, d.node.name)
        inserted = normalize_axes(axes, len(out_shape))
        dims = iter(range(rank))
        _reshape_or_gather(d, out_shape, [rank if i in inserted else next(dims) for i in range(len(out_shape))])


# -- joining and splitting -----------------------------------------------------------------
@register
class Concat(OpDef):
    name = "Concat"
    inputs = (Param("inputs", "T", variadic=True),)
    outputs = (Param("concat_result", "T"),)
    attrs = {"axis": Attr("int")}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        dtype = next((t.dtype for t in ctx.types if t is not None), None)
        shapes = [t.shape if t is not None else None for t in ctx.types]
        known = [s for s in shapes if s is not None]
        if dtype is None:
            return [None]
        if not known:
            return [TensorType(dtype, None)]
        rank = len(known[0])
        if any(len(s) != rank for s in known):
            raise ShapeError(f"Concat inputs differ in rank: {[list(s) for s in known]}", ctx.node.name)
        axis = normalize_axis(ctx.attrs["axis"], rank, ctx.node.name)
        out: list[Dim] = []
        for i in range(rank):
            if i == axis:
                out.append(None if len(known) < len(shapes) else _sum_dims([s[i] for s in known]))
            else:
                dims = {s[i] for s in known} - {None}
                ints = {d for d in dims if isinstance(d, int)}
                if len(ints) > 1:
                    raise ShapeError(f"Concat inputs differ in dim {i}: {sorted(ints)}", ctx.node.name)
                out.append(ints.pop() if ints else dims.pop() if len(dims) == 1 else None)
        return [TensorType(dtype, tuple(out))]

    def reference(self, *inputs, axis):
        return np.concatenate(inputs, axis=normalize_axis(axis, inputs[0].ndim))


def _sum_dims(dims: Sequence[Dim]) -> Dim:
    """Concat's axis dim: the sum, or the one nonzero dim among symbolic ones."""
    if all(isinstance(d, int) for d in dims):
        return sum(dims)
    nonzero = [d for d in dims if d != 0]
    return nonzero[0] if len(nonzero) == 1 else None


def split_sizes(dim: Dim, split: Sequence[int] | None, num_outputs: int | None,
                node: str | None = None) -> list[Dim]:
    """The sizes of Split's outputs: the split input, or num_outputs chunks of
    ceil(dim / num_outputs) with a smaller last one."""
    if split is not None:
        if isinstance(dim, int) and sum(split) != dim:
            raise ShapeError(f"Split sizes {list(split)} do not add up to {dim}", node)
        if any(s < 0 for s in split):
            raise ShapeError(f"Split sizes {list(split)} are negative", node)
        return list(split)
    if not num_outputs or num_outputs < 1:
        raise ShapeError("Split needs the split input or the num_outputs attribute", node)
    if not isinstance(dim, int):
        return [None] * num_outputs
    chunk = -(-dim // num_outputs)
    last = dim - chunk * (num_outputs - 1)
    if last < 0:
        raise ShapeError(f"Split cannot cut {dim} into {num_outputs} chunks of {chunk}", node)
    return [chunk] * (num_outputs - 1) + [last]


@register
class Split(OpDef):
    name = "Split"
    inputs = (Param("input", "T"), Param("split", "int64", optional=True))
    outputs = (Param("outputs", "T", variadic=True),)
    attrs = {"axis": Attr("int", 0), "num_outputs": Attr("int", None)}
    constraints = {"T": dt.ALL}
    composite = True

    def infer(self, ctx: InferContext) -> Types:
        n = len(ctx.node.outputs)
        shape = ctx.shape(0)
        split = const_ints(ctx.value(1))
        if shape is None or (ctx.has(1) and split is None):
            unknown = None if shape is None else tuple(
                None if i == normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name) else d
                for i, d in enumerate(shape))
            return [_typed(ctx, unknown)] * n
        axis = normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
        sizes = split_sizes(shape[axis], split, ctx.attrs["num_outputs"] or n, ctx.node.name)
        return [_typed(ctx, shape[:axis] + (s,) + shape[axis + 1:]) for s in sizes]

    def reference(self, x, split=None, *, axis, num_outputs):
        axis = normalize_axis(axis, x.ndim)
        sizes = split_sizes(x.shape[axis], const_ints(split), num_outputs)
        bounds = np.cumsum([0] + sizes).tolist()
        lead = (slice(None),) * axis
        return tuple(x[lead + (slice(b, e),)] for b, e in itertools.pairwise(bounds))

    def decompose(self, d: Decomposer) -> None:
        t = d.types[0]
        rank = d.rank(0)
        axis = normalize_axis(d.attrs["axis"], rank, d.node.name)
        split = const_ints(d.value(1))
        if len(d.inputs) > 1 and d.inputs[1] and split is None:
            raise ShapeError("Split needs a constant split input to decompose", d.node.name)
        if split is None and not isinstance(t.shape[axis], int):
            raise ShapeError(f"Split needs a static size on axis {axis} to decompose", d.node.name)
        sizes = split_sizes(t.shape[axis], split, d.attrs["num_outputs"] or len(d.outputs), d.node.name)
        begin = 0
        axes = d.const([axis], "int64")
        for size, out in zip(sizes, d.outputs):
            if out:
                d.op("Slice", d.inputs[0], d.const([begin], "int64"), d.const([begin + size], "int64"),
                     axes, outputs=[out])
            begin += size


# -- slicing, gathering, scattering ---------------------------------------------------------
@register
class Slice(OpDef):
    name = "Slice"
    inputs = (Param("data", "T"), Param("starts", "Tind"), Param("ends", "Tind"),
              Param("axes", "Tind", optional=True), Param("steps", "Tind", optional=True))
    outputs = (Param("output", "T"),)
    constraints = {"T": dt.ALL, "Tind": dt.INDEX}

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        if shape is None:
            return [_typed(ctx, None)]
        starts, ends = const_ints(ctx.value(1)), const_ints(ctx.value(2))
        axes, steps = const_ints(ctx.value(3)), const_ints(ctx.value(4))
        if starts is None or ends is None or (ctx.has(3) and axes is None) or (ctx.has(4) and steps is None):
            if axes is None:
                return [_typed(ctx, _unknown_dims(len(shape)))]
            touched = normalize_axes(axes, len(shape), ctx.node.name)
            return [_typed(ctx, tuple(None if i in touched else d for i, d in enumerate(shape)))]
        params = _slice_params(len(shape), starts, ends, axes, steps, ctx.node.name)
        out: list[Dim] = []
        for i, dim in enumerate(shape):
            if i not in params:
                out.append(dim)
            elif isinstance(dim, int):
                out.append(len(range(*slice(*params[i]).indices(dim))))
            else:
                s, e, st = params[i]
                out.append(dim if (s, st) == (0, 1) and e >= 2**31 - 1 else None)
        return [_typed(ctx, tuple(out))]

    def reference(self, data, starts, ends, axes=None, steps=None):
        params = _slice_params(data.ndim, const_ints(starts), const_ints(ends), const_ints(axes),
                               const_ints(steps))
        return data[tuple(slice(*params[i]) if i in params else slice(None) for i in range(data.ndim))]


@register
class Gather(OpDef):
    name = "Gather"
    inputs = (Param("data", "T"), Param("indices", "Tind"))
    outputs = (Param("output", "T"),)
    attrs = {"axis": Attr("int", 0)}
    constraints = {"T": dt.ALL, "Tind": dt.INDEX}

    def infer(self, ctx: InferContext) -> Types:
        shape, idx = ctx.shape(0), ctx.shape(1)
        if shape is None or idx is None:
            return [_typed(ctx, None)]
        axis = normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
        return [_typed(ctx, shape[:axis] + idx + shape[axis + 1:])]

    def reference(self, data, indices, *, axis):
        axis = normalize_axis(axis, data.ndim)
        return np.asarray(np.take(data, indices.astype(np.int64), axis=axis))


@register
class GatherElements(OpDef):
    name = "GatherElements"
    inputs = (Param("data", "T"), Param("indices", "Tind"))
    outputs = (Param("output", "T"),)
    attrs = {"axis": Attr("int", 0)}
    constraints = {"T": dt.ALL, "Tind": dt.INDEX}

    def infer(self, ctx: InferContext) -> Types:
        return [_typed(ctx, ctx.shape(1))]

    def reference(self, data, indices, *, axis):
        axis = normalize_axis(axis, data.ndim)
        if indices.ndim != data.ndim:
            raise ShapeError(f"GatherElements indices have rank {indices.ndim}, data rank {data.ndim}")
        grid = list(np.indices(indices.shape, sparse=True))
        size = data.shape[axis]
        idx = indices.astype(np.int64)
        if np.any((idx < -size) | (idx >= size)):
            raise ShapeError(f"GatherElements index out of range [-{size}, {size})")
        grid[axis] = np.where(idx < 0, idx + size, idx)
        return data[tuple(grid)]


_SCATTER_REDUCTIONS = {"add": np.add, "mul": np.multiply, "max": np.maximum, "min": np.minimum}


@register
class ScatterND(OpDef):
    name = "ScatterND"
    inputs = (Param("data", "T"), Param("indices", "int64"), Param("updates", "T"))
    outputs = (Param("output", "T"),)
    attrs = {"reduction": Attr("string", "none")}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        return [_typed(ctx, ctx.shape(0))]

    def reference(self, data, indices, updates, *, reduction):
        if reduction != "none" and reduction not in _SCATTER_REDUCTIONS:
            raise ShapeError(f"ScatterND reduction '{reduction}' is unknown")
        combine = _SCATTER_REDUCTIONS.get(reduction)
        out = data.copy()
        k = indices.shape[-1]
        index_rows = indices.reshape(-1, k)
        rows = updates.reshape((index_rows.shape[0],) + data.shape[k:])
        with np.errstate(all="ignore"):
            for where, row in zip(index_rows, rows):
                key = tuple(int(i) for i in where)
                out[key] = row if combine is None else combine(out[key], row)
        return out


# -- broadcasting, tiling, padding ---------------------------------------------------------
@register
class Expand(OpDef):
    name = "Expand"
    inputs = (Param("input", "T"), Param("shape", "int64"))
    outputs = (Param("output", "T"),)
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        target = const_ints(ctx.value(1))
        shape = ctx.shape(0)
        if target is None:
            n = _vector_length(ctx, 1)
            rank = None if n is None or shape is None else max(n, len(shape))
            return [_typed(ctx, _unknown_dims(rank))]
        return [_typed(ctx, broadcast(shape, tuple(target), node=ctx.node.name))]

    def reference(self, x, shape):
        out = np.broadcast_shapes(x.shape, tuple(const_ints(shape)))
        return np.broadcast_to(x, out).copy()


@register
class Tile(OpDef):
    name = "Tile"
    inputs = (Param("input", "T"), Param("repeats", "int64"))
    outputs = (Param("output", "T"),)
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        repeats = const_ints(ctx.value(1))
        if shape is None:
            return [_typed(ctx, _unknown_dims(_vector_length(ctx, 1)))]
        if repeats is None:
            return [_typed(ctx, _unknown_dims(len(shape)))]
        self._check(len(shape), repeats, ctx.node.name)
        return [_typed(ctx, tuple(d * r if isinstance(d, int) else d if r == 1 else None
                                  for d, r in zip(shape, repeats)))]

    @staticmethod
    def _check(rank: int, repeats: Sequence[int], node: str | None = None) -> None:
        if len(repeats) != rank:
            raise ShapeError(f"Tile needs {rank} repeats, got {len(repeats)}", node)
        if any(r < 0 for r in repeats):
            raise ShapeError(f"Tile repeats {list(repeats)} are negative", node)

    def reference(self, x, repeats):
        repeats = const_ints(repeats)
        self._check(x.ndim, repeats)
        return np.tile(x, repeats) if x.ndim else x.copy()


@register
class Pad(OpDef):
    name = "Pad"
    inputs = (Param("data", "T"), Param("pads", "int64"), Param("constant_value", "T", optional=True),
              Param("axes", "Tind", optional=True))
    outputs = (Param("output", "T"),)
    attrs = {"mode": Attr("string", "constant")}
    constraints = {"T": dt.ALL, "Tind": dt.INDEX}

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        pads, axes = const_ints(ctx.value(1)), const_ints(ctx.value(3))
        if shape is None:
            return [_typed(ctx, None)]
        if pads is None or (ctx.has(3) and axes is None):
            return [_typed(ctx, _unknown_dims(len(shape)))]
        widths = _pad_widths(len(shape), pads, axes, ctx.node.name)
        return [_typed(ctx, tuple(d + b + e if isinstance(d, int) else d if (b, e) == (0, 0) else None
                                  for d, (b, e) in zip(shape, widths)))]

    def reference(self, data, pads, constant_value=None, axes=None, *, mode):
        if mode not in ("constant", "reflect", "edge", "wrap"):
            raise ShapeError(f"Pad mode '{mode}' is unknown")
        widths = _pad_widths(data.ndim, const_ints(pads), const_ints(axes))
        for dim, (b, e) in zip(data.shape, widths):
            if dim + b + e < 0:
                raise ShapeError(f"Pad removes more than the {dim} elements of an axis")
        grow = [(max(b, 0), max(e, 0)) for b, e in widths]
        if mode != "constant":
            out = np.pad(data, grow, mode=mode)
        else:
            value = np.zeros((), data.dtype) if constant_value is None else constant_value.reshape(-1)[0]
            out = np.pad(data, grow, mode="constant", constant_values=value)
        # negative pads remove elements from the padded result
        return out[tuple(slice(max(-b, 0), n - max(-e, 0)) for n, (b, e) in zip(out.shape, widths))]


# -- shapes and constants ------------------------------------------------------------------
@register
class Shape(OpDef):
    name = "Shape"
    inputs = (Param("data", "T"),)
    outputs = (Param("shape", "int64"),)
    attrs = {"start": Attr("int", 0), "end": Attr("int", None)}
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        if shape is None:
            return [TensorType("int64", (None,))]
        start, end = _shape_range(len(shape), ctx.attrs["start"], ctx.attrs["end"])
        return [TensorType("int64", (max(end - start, 0),))]

    def reference(self, data, *, start, end):
        start, end = _shape_range(data.ndim, start, end)
        return np.array(data.shape[start:end], dtype=np.int64)


@register
class Size(OpDef):
    name = "Size"
    inputs = (Param("data", "T"),)
    outputs = (Param("size", "int64"),)
    constraints = {"T": dt.ALL}
    composite = True

    def infer(self, ctx: InferContext) -> Types:
        return [TensorType("int64", ())]

    def reference(self, data):
        return np.array(data.size, dtype=np.int64)

    def decompose(self, d: Decomposer) -> None:
        d.op("ReduceProd", d.op("Shape", d.inputs[0]), outputs=d.outputs, keepdims=0)


def _fill_value(value: np.ndarray | None) -> np.ndarray:
    """ConstantOfShape's one-element fill tensor (float32 zero by default)."""
    if value is None:
        return np.zeros((), np.float32)
    value = np.asarray(value)
    if value.size != 1:
        raise ShapeError(f"ConstantOfShape value must have one element, got {value.size}")
    dt.from_numpy(value.dtype)
    return value.reshape(())


@register
class ConstantOfShape(OpDef):
    name = "ConstantOfShape"
    inputs = (Param("input", "int64"),)
    outputs = (Param("output", "T2"),)
    attrs = {"value": Attr("tensor", None)}
    constraints = {"T2": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        dtype = _fill_value(ctx.attrs["value"]).dtype.name
        shape = const_ints(ctx.value(0))
        if shape is None:
            return [TensorType(dtype, _unknown_dims(_vector_length(ctx, 0)))]
        return [TensorType(dtype, tuple(shape))]

    def reference(self, shape, *, value):
        dims = const_ints(shape)
        if any(d < 0 for d in dims):
            raise ShapeError(f"ConstantOfShape shape {dims} has a negative dim")
        fill = _fill_value(value)
        return np.full(dims, fill, dtype=fill.dtype)


_CONSTANT_ATTRS = ("value", "sparse_value", "value_float", "value_floats", "value_int", "value_ints",
                   "value_string", "value_strings")


@register
class Constant(OpDef):
    name = "Constant"
    outputs = (Param("output", "T"),)
    attrs = {
        "value": Attr("tensor", None),
        "sparse_value": Attr("sparse_tensor", None),
        "value_float": Attr("float", None),
        "value_floats": Attr("floats", None),
        "value_int": Attr("int", None),
        "value_ints": Attr("ints", None),
        "value_string": Attr("string", None),
        "value_strings": Attr("strings", None),
    }
    constraints = {"T": dt.ALL}

    def infer(self, ctx: InferContext) -> Types:
        value = self._value(ctx.attrs, ctx.node.name)
        return [TensorType(value.dtype.name, value.shape)]

    @staticmethod
    def _value(attrs: dict, node: str | None = None) -> np.ndarray:
        given = [k for k in _CONSTANT_ATTRS if attrs.get(k) is not None]
        if len(given) != 1:
            raise ShapeError(f"Constant needs exactly one value attribute, got {given or 'none'}", node)
        key = given[0]
        if key in ("value_string", "value_strings"):
            raise ShapeError("Constant with string values is not supported", node)
        value = attrs[key]
        if key in ("value", "sparse_value"):  # the IR holds a sparse value as a dense array
            value = np.asarray(value)
            dt.from_numpy(value.dtype)
            return value
        return np.asarray(value, dtype=np.float32 if key.startswith("value_float") else np.int64)

    def reference(self, **attrs):
        return self._value(attrs).copy()


@register
class Range(OpDef):
    name = "Range"
    inputs = (Param("start", "T"), Param("limit", "T"), Param("delta", "T"))
    outputs = (Param("output", "T"),)
    attrs = {"stash_type": Attr("int", 1)}
    constraints = {"T": ("float16", "float32", "float64", "int16", "int32", "int64") + dt.BFLOAT16}

    def infer(self, ctx: InferContext) -> Types:
        values = [ctx.value(i) for i in range(3)]
        if any(v is None for v in values):
            return [_typed(ctx, (None,))]
        return [_typed(ctx, self.reference(*values, stash_type=ctx.attrs["stash_type"]).shape)]

    def reference(self, start, limit, delta, *, stash_type):
        """start, limit and delta are scalars; one-element tensors are accepted as the
        scalar they hold (ONNX's own AffineGrid function passes them)."""
        start, limit, delta = (_one_element(v) for v in (start, limit, delta))
        dtype = start.dtype
        if dtype.kind in "iu":
            s, l, step = int(start), int(limit), int(delta)
            if step == 0:
                raise ShapeError("Range delta cannot be 0")
            return (s + step * np.arange(_range_length(s, l, step), dtype=np.int64)).astype(dtype)
        half = dtype in (np.float16, dt.to_numpy("bfloat16"))
        work = np.dtype(dt.from_onnx(stash_type)) if half else np.dtype(np.float64)
        s, l, step = (float(np.asarray(v).astype(work)) for v in (start, limit, delta))
        if step == 0:
            raise ShapeError("Range delta cannot be 0")
        n = _range_length(s, l, step)
        return (work.type(s) + np.arange(n, dtype=work) * work.type(step)).astype(dtype)


def _one_element(value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.size != 1:
        raise ShapeError(f"Range takes scalars, got shape {list(arr.shape)}")
    return arr.reshape(())


# -- resizing ---------------------------------------------------------------------------
_COORD_MODES = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
                "asymmetric", "tf_crop_and_resize")


def _cubic_weight(d: np.ndarray, a: float) -> np.ndarray:
    """Keys' cubic convolution weight at distance |d| <= 2 (Horner form)."""
    near = ((a + 2) * d - (a + 3)) * d * d + 1
    far = ((a * d - 5 * a) * d + 8 * a) * d - 4 * a
    return np.where(d <= 1, near, far)


def _resize_kernel(mode: str, nearest_mode: str, antialias: int, cubic_a: float):
    """A function (ratio[n_out], scale) -> weights[n_out, n] of an even number n of taps.

    ``ratio`` in (0, 1] is the source position minus its left neighbour ``left``; the
    taps are ``left + 1 - n/2`` to ``left + n/2``."""
    def nearest(r, scale):
        picks = {"round_prefer_floor": r > 0.5, "round_prefer_ceil": r >= 0.5,
                 "floor": np.zeros_like(r, bool), "ceil": np.ones_like(r, bool)}
        if nearest_mode not in picks:
            raise ShapeError(f"Resize nearest_mode '{nearest_mode}' is unknown")
        right = picks[nearest_mode] | (r == 1)
        return np.stack([~right, right], axis=1).astype(np.float64)

    def linear(r, scale):
        if not antialias:
            return np.stack([1 - r, r], axis=1)
        s = min(scale, 1.0)
        first = int(np.floor(-1 / s) + 1)
        dist = (np.arange(first, 2 - first)[None, :] - r[:, None]) * s
        w = np.clip(1 - np.abs(dist), 0, 1)
        return w / w.sum(axis=1, keepdims=True)

    def cubic(r, scale):
        if not antialias:
            dists = [r + 1, r, 1 - r, (1 - r) + 1]
            return np.stack([_cubic_weight(d, cubic_a) for d in dists], axis=1)
        s = min(scale, 1.0)
        first = int(np.floor(-2 / s) + 1)
        x = np.abs(s * (np.arange(first, 2 - first)[None, :] - r[:, None]))
        x2, x3 = x * x, x * x * x
        a = cubic_a
        w = np.where(x <= 1, (a + 2) * x3 - (a + 3) * x2 + 1,
                     np.where(x < 2, a * x3 - 5 * a * x2 + 8 * a * x - 4 * a, 0.0))
        return w / w.sum(axis=1, keepdims=True)

    kernels = {"nearest": nearest, "linear": linear, "cubic": cubic}
    if mode not in kernels:
        raise ShapeError(f"Resize mode '{mode}' is unknown")
    return kernels[mode]


def _source_coords(mode: str, out_len: int, scale: float, in_len: int, roi: tuple | None):
    """Source coordinate of every output index along one axis, and for
    tf_crop_and_resize the mask of positions outside the input."""
    y = np.arange(out_len, dtype=np.float64)
    width = scale * in_len
    if mode == "asymmetric":
        return y / scale, None
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if mode == "pytorch_half_pixel":
        return (np.full(out_len, -0.5) if width == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "align_corners":
        return (np.zeros(out_len) if width == 1 else y * (in_len - 1) / (width - 1)), None
    if mode == "half_pixel_symmetric":
        offset = in_len / 2 * (1 - out_len / width)
        return offset + (y + 0.5) / scale - 0.5, None
    if mode == "tf_crop_and_resize":
        lo, hi = roi
        if width == 1:
            x = np.full(out_len, (hi - lo) * (in_len - 1) / 2, dtype=np.float64)
        else:
            x = y * (hi - lo) * (in_len - 1) / (width - 1)
        x = x + lo * (in_len - 1)
        return x, (x < 0) | (x > in_len - 1)
    raise ShapeError(f"Resize coordinate_transformation_mode '{mode}' is unknown")


def resize_axis_taps(in_len: int, out_len: int, scale: float, kernel, coord_mode: str, roi: tuple | None,
                     exclude_outside: int, nearest: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """How one axis is resampled: for each output index, the source indices it reads
    (clamped into the input; a single one for ``nearest``) and their float64 weights,
    and for tf_crop_and_resize the mask of outputs outside the input (else None)."""
    x, outside = _source_coords(coord_mode, out_len, scale, in_len, roi)
    left = np.ceil(x).astype(np.int64) - 1
    weights = kernel(x - left, scale)
    n = weights.shape[1]
    taps = left[:, None] + np.arange(1 - n // 2, n // 2 + 1)[None, :]
    if nearest:  # pick the chosen neighbour: weighing them would turn 0 * inf into nan
        chosen = taps[np.arange(out_len), weights.argmax(axis=1)]
        return np.clip(chosen, 0, in_len - 1)[:, None], np.ones((out_len, 1)), outside
    if exclude_outside:
        weights = np.where((taps < 0) | (taps >= in_len), 0.0, weights)
        total = weights.sum(axis=1, keepdims=True)
        weights = weights / np.where(total == 0, 1.0, total)
    return np.clip(taps, 0, in_len - 1), weights, outside


def _resize_axis(data: np.ndarray, axis: int, scale: float, out_len: int, kernel, coord_mode: str,
                 roi: tuple | None, extrapolation, exclude_outside: int, nearest: bool) -> np.ndarray:
    """Resample ``data`` along one axis (float64 data unless ``nearest``)."""
    if out_len == 0:
        return np.empty(data.shape[:axis] + (0,) + data.shape[axis + 1:], data.dtype)
    taps, weights, outside = resize_axis_taps(data.shape[axis], out_len, scale, kernel, coord_mode, roi,
                                              exclude_outside, nearest)
    tail = (1,) * (data.ndim - axis - 1)
    if nearest:
        out = np.take(data, taps[:, 0], axis=axis)
    else:
        picked = np.take(data, taps, axis=axis)
        with np.errstate(invalid="ignore"):  # 0 * inf where a weight is zero
            out = (picked * weights.reshape(weights.shape + tail)).sum(axis=axis + 1)
    if outside is not None and outside.any():
        out = np.where(outside.reshape((out_len,) + tail), extrapolation, out)
    return out


def resize_plan(shape: Sequence[int], scales: Sequence[float] | None, sizes: Sequence[int] | None,
                axes: Sequence[int] | None, policy: str, node: str | None = None
                ) -> tuple[list[int], dict[int, float], dict[int, int]]:
    """Resize's axes (in processing order), their scales and output sizes."""
    rank = len(shape)
    axes = list(range(rank)) if axes is None else normalize_axes(axes, rank, node)
    if len(set(axes)) != len(axes):
        raise ShapeError(f"Resize axes {axes} repeat an axis", node)
    if (scales is None) == (sizes is None):
        raise ShapeError("Resize needs exactly one of scales and sizes", node)
    given = scales if sizes is None else sizes
    if len(given) != len(axes):
        raise ShapeError(f"Resize has {len(given)} scales or sizes for {len(axes)} axes", node)
    if sizes is None:
        scale = {a: float(s) for a, s in zip(axes, scales)}
        if any(s <= 0 for s in scale.values()):
            raise ShapeError(f"Resize scales {list(scales)} must be positive", node)
        return axes, scale, {a: int(np.floor(scale[a] * shape[a])) for a in axes}
    if any(shape[a] == 0 and s for a, s in zip(axes, sizes)):
        raise ShapeError(f"Resize cannot fill sizes {list(sizes)} from empty axes of {list(shape)}", node)
    scale = {a: s / shape[a] if shape[a] else 1.0 for a, s in zip(axes, sizes)}
    size = dict(zip(axes, (int(s) for s in sizes)))
    if policy != "stretch":
        if policy not in ("not_larger", "not_smaller"):
            raise ShapeError(f"Resize keep_aspect_ratio_policy '{policy}' is unknown", node)
        common = (min if policy == "not_larger" else max)(scale.values())
        scale = dict.fromkeys(axes, common)
        size = {a: int(common * shape[a] + 0.5) for a in axes}
    return axes, scale, size


def _to_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Cast interpolated float64 values: integers round half to even and saturate."""
    if dtype.kind == "f":
        return values.astype(dtype)
    low, high = (0, 1) if dtype.kind == "b" else (np.iinfo(dtype).min, np.iinfo(dtype).max)
    clipped = np.clip(np.round(values), low, high)
    top = clipped >= float(high)  # float(high) rounds up for 64-bit types: cast those apart
    return np.where(top, dtype.type(high), np.where(top, 0, clipped).astype(dtype))


def _nonempty(value: np.ndarray | None) -> np.ndarray | None:
    return None if value is None or value.size == 0 else value


def resize_steps(shape: Sequence[int], roi: np.ndarray | None, scales: np.ndarray | None,
                 sizes: np.ndarray | None, axes: Sequence[int] | None, policy: str, node: str | None = None
                 ) -> list[tuple[int, float, int, tuple]]:
    """Resize's passes, one per axis that changes, in order: (axis, scale, output size,
    (roi start, roi end)). Empty ``roi``, ``scales`` or ``sizes`` count as absent."""
    scales, sizes, roi = _nonempty(scales), _nonempty(sizes), _nonempty(roi)
    order, scale, size = resize_plan(shape, None if scales is None else scales.tolist(),
                                     None if sizes is None else sizes.tolist(), axes, policy, node)
    n = len(order)
    if roi is None:
        roi = np.array([0.0] * n + [1.0] * n, np.float32)
    if roi.size != 2 * n:
        raise ShapeError(f"Resize roi has {roi.size} entries for {n} axes", node)
    steps = []
    for i, axis in enumerate(order):
        lo, hi = roi[i], roi[n + i]
        if not (math.isclose(scale[axis], 1.0) and size[axis] == shape[axis]
                and math.isclose(float(lo), 0.0) and math.isclose(float(hi), 1.0)):
            steps.append((axis, scale[axis], size[axis], (lo, hi)))
    return steps


@register
class Resize(OpDef):
    name = "Resize"
    inputs = (Param("X", "T1"), Param("roi", "T2", optional=True), Param("scales", "float32", optional=True),
              Param("sizes", "int64", optional=True))
    outputs = (Param("Y", "T1"),)
    attrs = {
        "antialias": Attr("int", 0),
        "axes": Attr("ints", None),
        "coordinate_transformation_mode": Attr("string", "half_pixel"),
        "cubic_coeff_a": Attr("float", -0.75),
        "exclude_outside": Attr("int", 0),
        "extrapolation_value": Attr("float", 0.0),
        "keep_aspect_ratio_policy": Attr("string", "stretch"),
        "mode": Attr("string", "nearest"),
        "nearest_mode": Attr("string", "round_prefer_floor"),
    }
    constraints = {"T1": dt.ALL, "T2": dt.FLOATS}

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        if shape is None:
            return [_typed(ctx, None)]
        axes = ctx.attrs["axes"]
        touched = list(range(len(shape))) if axes is None else normalize_axes(axes, len(shape), ctx.node.name)
        scales, sizes = _nonempty(ctx.value(2)), _nonempty(ctx.value(3))
        policy = ctx.attrs["keep_aspect_ratio_policy"]
        if (scales is not None or sizes is not None) and all(isinstance(shape[a], int) for a in touched):
            _, _, size = resize_plan(shape, None if scales is None else scales.tolist(),
                                     None if sizes is None else sizes.tolist(), axes, policy, ctx.node.name)
        elif sizes is not None and policy == "stretch" and len(sizes) == len(touched):
            size = dict(zip(touched, const_ints(sizes)))
        else:
            size = dict.fromkeys(touched)
        return [_typed(ctx, tuple(size.get(i, d) for i, d in enumerate(shape)))]

    def reference(self, X, roi=None, scales=None, sizes=None, *, antialias, axes, coordinate_transformation_mode,
                  cubic_coeff_a, exclude_outside, extrapolation_value, keep_aspect_ratio_policy, mode,
                  nearest_mode):
        kernel = _resize_kernel(mode, nearest_mode, antialias if mode != "nearest" else 0, cubic_coeff_a)
        steps = resize_steps(X.shape, roi, scales, sizes, axes, keep_aspect_ratio_policy)
        # nearest only picks elements, so it works in X's own dtype; the others in float64
        nearest = mode == "nearest"
        out = X if nearest else X.astype(np.float64)
        fill = _to_dtype(np.array(extrapolation_value, np.float64), X.dtype) if nearest else extrapolation_value
        for axis, scale, size, window in steps:
            out = _resize_axis(out, axis, scale, size, kernel, coordinate_transformation_mode, window, fill,
                               exclude_outside, nearest)
        return out.copy() if nearest else _to_dtype(out, X.dtype)


# -- rearranging blocks ------------------------------------------------------------------
def _block_check(shape: Dims, blocksize: int, op: str, node: str | None = None) -> None:
    if len(shape) != 4:
        raise ShapeError(f"{op} needs a rank-4 input, got rank {len(shape)}", node)
    if blocksize < 1:
        raise ShapeError(f"{op} blocksize must be positive, got {blocksize}", node)


def _depth_to_space_plan(shape: Sequence[int], b: int, mode: str):
    """DepthToSpace as (split shape, permutation, output shape)."""
    n, c, h, w = shape
    if mode == "DCR":
        return (n, b, b, c // (b * b), h, w), (0, 3, 4, 1, 5, 2), (n, c // (b * b), h * b, w * b)
    if mode == "CRD":
        return (n, c // (b * b), b, b, h, w), (0, 1, 4, 2, 5, 3), (n, c // (b * b), h * b, w * b)
    raise ShapeError(f"DepthToSpace mode '{mode}' is unknown")


def _space_to_depth_plan(shape: Sequence[int], b: int, mode: str):
    """SpaceToDepth as (split shape, permutation, output shape)."""
    n, c, h, w = shape
    perms = {"DCR": (0, 3, 5, 1, 2, 4), "CRD": (0, 1, 3, 5, 2, 4)}
    if mode not in perms:
        raise ShapeError(f"SpaceToDepth mode '{mode}' is unknown")
    return (n, c, h // b, b, w // b, b), perms[mode], (n, c * b * b, h // b, w // b)


class _BlockRearrange(OpDef):
    """DepthToSpace and SpaceToDepth: a reshape, a transpose and a reshape. Subclasses
    define ``_plan(shape, blocksize, mode)`` -> (split shape, permutation, output shape)."""

    inputs = (Param("input", "T"),)
    outputs = (Param("output", "T"),)
    attrs = {"blocksize": Attr("int"), "mode": Attr("string", "DCR")}
    constraints = {"T": dt.ALL}
    composite = True

    def _checked_plan(self, shape: Dims, b: int, mode: str, node: str | None = None):
        _block_check(shape, b, self.name, node)
        _, c, h, w = shape
        if self.name == "DepthToSpace" and isinstance(c, int) and c % (b * b):
            raise ShapeError(f"DepthToSpace channels {c} are not a multiple of {b * b}", node)
        if self.name == "SpaceToDepth" and any(isinstance(d, int) and d % b for d in (h, w)):
            raise ShapeError(f"SpaceToDepth spatial dims {h}x{w} are not multiples of {b}", node)
        return self._plan(shape, b, mode)

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        if shape is None:
            return [_typed(ctx, (None,) * 4)]
        dims = tuple(d if isinstance(d, int) else 0 for d in shape)
        _, _, out = self._checked_plan(dims, ctx.attrs["blocksize"], ctx.attrs["mode"], ctx.node.name)
        # output dim i (i >= 1) is computed from input dim i alone
        return [_typed(ctx, (shape[0],) + tuple(o if isinstance(d, int) else None
                                                for o, d in zip(out[1:], shape[1:])))]

    def reference(self, x, *, blocksize, mode):
        split, perm, out = self._checked_plan(x.shape, blocksize, mode)
        return np.transpose(x.reshape(split), perm).reshape(out)

    def decompose(self, d: Decomposer) -> None:
        t = d.types[0]
        if t is None or not t.is_static:
            raise ShapeError(f"{self.name} needs a static input shape to decompose", d.node.name)
        split, perm, out = self._checked_plan(t.shape, d.attrs["blocksize"], d.attrs["mode"], d.node.name)
        x = d.op("Reshape", d.inputs[0], d.const(list(split), "int64"), allowzero=1)
        x = d.op("Transpose", x, perm=list(perm))
        d.op("Reshape", x, d.const(list(out), "int64"), outputs=d.outputs, allowzero=1)


@register
class DepthToSpace(_BlockRearrange):
    name = "DepthToSpace"

    def _plan(self, shape, b, mode):
        return _depth_to_space_plan(shape, b, mode)


@register
class SpaceToDepth(_BlockRearrange):
    name = "SpaceToDepth"

    def _plan(self, shape, b, mode):
        return _space_to_depth_plan(shape, b, mode)


# -- masks and encodings -----------------------------------------------------------------
@register
class OneHot(OpDef):
    name = "OneHot"
    inputs = (Param("indices", "T1"), Param("depth", "T2"), Param("values", "T3"))
    outputs = (Param("output", "T3"),)
    attrs = {"axis": Attr("int", -1)}
    constraints = {"T1": dt.NUMERIC, "T2": dt.NUMERIC, "T3": dt.ALL + dt.BFLOAT16}
    composite = True

    def infer(self, ctx: InferContext) -> Types:
        shape, dtype = ctx.shape(0), ctx.dtype(2)
        if dtype is None:
            return [None]
        if shape is None:
            return [TensorType(dtype, None)]
        depth = ctx.value(1)
        axis = normalize_axis(ctx.attrs["axis"], len(shape) + 1, ctx.node.name)
        size = None if depth is None else self._depth(depth)
        return [TensorType(dtype, shape[:axis] + (size,) + shape[axis:])]

    @staticmethod
    def _depth(depth: np.ndarray) -> int:
        if depth.size != 1:
            raise ShapeError(f"OneHot depth must have one element, got {depth.size}")
        value = int(depth.reshape(-1)[0].astype(np.int64))
        if value < 1:
            raise ShapeError(f"OneHot depth must be positive, got {value}")
        return value

    def reference(self, indices, depth, values, *, axis):
        axis = normalize_axis(axis, indices.ndim + 1)
        n = self._depth(depth)
        idx = indices.astype(np.int64)
        idx = np.where(idx < 0, idx + n, idx)
        classes = np.arange(n).reshape((n,) + (1,) * (indices.ndim - axis))
        hot = np.expand_dims(idx, axis) == classes
        off, on = values.reshape(-1)[:2]
        return np.where(hot, on, off).astype(values.dtype)

    def decompose(self, d: Decomposer) -> None:
        rank = d.rank(0)
        axis = normalize_axis(d.attrs["axis"], rank + 1, d.node.name)
        idx = d.op("Cast", d.inputs[0], to=dt.onnx_code("int64"))
        depth = d.op("Reshape", d.op("Cast", d.inputs[1], to=dt.onnx_code("int64")), d.const([], "int64"))
        zero = d.const(0, "int64")
        idx = d.op("Where", d.op("Less", idx, zero), d.op("Add", idx, depth), idx)
        classes = d.op("Range", zero, depth, d.const(1, "int64"))
        if rank - axis:
            classes = d.op("Unsqueeze", classes, d.const(list(range(1, rank - axis + 1)), "int64"))
        hot = d.op("Equal", d.op("Unsqueeze", idx, d.const([axis], "int64")), classes)
        off = d.op("Gather", d.inputs[2], d.const(0, "int64"), axis=0)
        on = d.op("Gather", d.inputs[2], d.const(1, "int64"), axis=0)
        d.op("Where", hot, on, off, outputs=d.outputs)


@register
class Trilu(OpDef):
    name = "Trilu"
    inputs = (Param("input", "T"), Param("k", "int64", optional=True))
    outputs = (Param("output", "T"),)
    attrs = {"upper": Attr("int", 1)}
    constraints = {"T": dt.ALL}
    composite = True

    def infer(self, ctx: InferContext) -> Types:
        shape = ctx.shape(0)
        if shape is not None and len(shape) < 2:
            raise ShapeError(f"Trilu needs rank >= 2, got {len(shape)}", ctx.node.name)
        return [_typed(ctx, shape)]

    def reference(self, x, k=None, *, upper):
        if x.ndim < 2:
            raise ShapeError(f"Trilu needs rank >= 2, got {x.ndim}")
        k = 0 if k is None else int(k.reshape(-1)[0])
        rows, cols = x.shape[-2:]
        diff = np.arange(cols)[None, :] - np.arange(rows)[:, None]
        keep = diff >= k if upper else diff <= k
        return np.where(keep, x, np.zeros((), x.dtype))

    def decompose(self, d: Decomposer) -> None:
        scalar = d.const([], "int64")
        rows = d.op("Reshape", d.op("Shape", d.inputs[0], start=-2, end=-1), scalar)
        cols = d.op("Reshape", d.op("Shape", d.inputs[0], start=-1), scalar)
        zero, one = d.const(0, "int64"), d.const(1, "int64")
        row_ids = d.op("Unsqueeze", d.op("Range", zero, rows, one), d.const([1], "int64"))
        diff = d.op("Sub", d.op("Range", zero, cols, one), row_ids)
        k = d.inputs[1] if len(d.inputs) > 1 and d.inputs[1] else zero
        keep = d.op("GreaterOrEqual" if d.attrs["upper"] else "LessOrEqual", diff,
                    d.op("Reshape", k, scalar))
        d.op("Where", keep, d.inputs[0], d.const(np.zeros((), d.dtype(0))), outputs=d.outputs)


@register
class Dropout(OpDef):
    """Identity unless ``training_mode`` is true and ``ratio`` (default 0.5) is not 0:
    then each element is kept with probability 1 - ratio and scaled by 1 / (1 - ratio),
    ``output = data * mask * scale``. The mask is drawn as ``uniform[0, 1) >= ratio``
    from numpy's MT19937 RandomState seeded with ``seed`` (the generator ONNX's reference
    and node cases use), or from fresh entropy when ``seed`` is absent."""

    name = "Dropout"
    inputs = (Param("data", "T"), Param("ratio", "T1", optional=True), Param("training_mode", "bool", optional=True))
    outputs = (Param("output", "T"), Param("mask", "bool", optional=True))
    attrs = {"seed": Attr("int", None)}
    constraints = {"T": dt.FLOATS, "T1": dt.FLOATS}
    composite = True

    def infer(self, ctx: InferContext) -> Types:
        out = [ctx.types[0]]
        if len(ctx.node.outputs) > 1:
            out.append(TensorType("bool", ctx.shape(0)))
        return out

    def reference(self, data, ratio=None, training_mode=None, *, seed):
        if training_mode is None or not bool(training_mode.reshape(-1)[0]):
            return data.copy(), np.ones(data.shape, dtype=bool)
        ratio = np.asarray(0.5, np.float32) if ratio is None else ratio.reshape(())
        if ratio == 0:
            return data.copy(), np.ones(data.shape, dtype=bool)
        if not 0 <= ratio < 1:
            raise ShapeError(f"Dropout ratio {float(ratio)} is outside [0, 1)")
        mask = np.random.RandomState(seed).uniform(0.0, 1.0, data.shape) >= ratio
        one = np.ones((), ratio.dtype)
        with np.errstate(all="ignore"):
            out = data * mask.astype(data.dtype) * (one / (one - ratio))
        return out.astype(data.dtype), mask

    def decompose(self, d: Decomposer) -> None:
        training = d.value(2) if len(d.inputs) > 2 and d.inputs[2] else np.array(False)
        ratio = d.value(1) if len(d.inputs) > 1 and d.inputs[1] else None
        if training is None or (bool(training.reshape(-1)[0]) and (ratio is None or ratio.reshape(-1)[0] != 0)):
            raise ShapeError("Dropout decomposes only where it is the identity (training_mode constant "
                             "False or ratio constant 0): the library has no random op", d.node.name)
        d.op("Identity", d.inputs[0], outputs=d.outputs[:1])
        if len(d.outputs) > 1 and d.outputs[1]:
            d.op("ConstantOfShape", d.op("Shape", d.inputs[0]), outputs=d.outputs[1:2],
                 value=np.ones((1,), dtype=bool))
