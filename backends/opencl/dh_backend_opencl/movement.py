"""Movement ops on the device for float32, float16, int32, int64 and bool.

One strided-copy kernel per element size (cl/strided_copy.cl) serves Transpose,
Slice, Concat, Split, Expand and Tile; Gather and Pad have their own kernels; the
reshaping ops (Reshape, Flatten, Squeeze, Unsqueeze) are zero-copy views of the
contiguous input, and Identity and inference Dropout return it.

Index inputs (shapes, starts, axes, pads, repeats, split sizes) are read at compile
time when they are initializers, else at run time through
:func:`runtime.host_values` (host-computed shape inputs keep their host copy)."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pyopencl as cl
from dh_core.ops.shape import (_fill_value, _pad_widths, _slice_params, _squeeze_axes, _unsqueeze_shape, const_ints,
                               flatten_axis, reshape_shape, split_sizes)

from dh_core.errors import ShapeError
from dh_core.ir import type_key
from dh_core.ops.shapes import normalize_axes

from .elementwise import FLOATS
from .runtime import Runtime, host_values, source
from .table import OpKernel, rank

DTYPES = ("float32", "float16", "int32", "int64", "bool")
"""Elements are moved as unsigned integers of their size, so float16 needs no extension."""
WORDS = {1: "uchar", 2: "ushort", 4: "uint", 8: "ulong"}
"""The unsigned integer type a kernel moves an element of each size as."""
INDEX_TYPES = {"int32": "int", "int64": "long"}


def word(dtype) -> str:
    return WORDS[np.dtype(dtype).itemsize]


def contiguous_strides(shape: Sequence[int]) -> tuple[int, ...]:
    """Element strides of a C-contiguous array of ``shape``."""
    strides, step = [], 1
    for d in reversed(shape):
        strides.append(step)
        step *= d
    return tuple(reversed(strides))


class Copier:
    """Launches the strided copy for one element size, keeping each copy plan's
    ``meta`` buffer on the device."""

    def __init__(self, rt: Runtime, dtype) -> None:
        self.rt = rt
        self.kernel = rt.kernel(source("strided_copy.cl"), "strided_copy", f"-DT={word(dtype)}")
        self.metas: dict[tuple, object] = {}

    def __call__(self, y, x, shape, src, dst=None, src0=0, dst0=0, period=None) -> None:
        """Copy the block ``shape`` of ``x`` (read through ``src`` strides from
        ``src0``, axis d repeating every ``period[d]``) into ``y`` (``dst`` strides)."""
        n = math.prod(shape)
        if not n:
            return
        dst = contiguous_strides(shape) if dst is None else dst
        period = shape if period is None else period
        key = (tuple(shape), tuple(src), tuple(dst), src0, dst0, tuple(period))
        meta = self.metas.get(key)
        if meta is None:
            values = [len(shape), src0, dst0, *shape, *period, *src, *dst]
            meta = self.metas[key] = self.rt.upload(np.asarray(values, np.int64))
        self.kernel(self.rt.queue, (n,), None, y.data, x.data, meta.data, np.int64(n))


def _constant(consts: Sequence, i: int):
    """The initializer value of input ``i`` (None when it is absent or not an initializer)."""
    return consts[i] if i < len(consts) else None


def _index_input(const, buf) -> list[int] | None:
    """An index input's values: from the initializer when there is one, else from the buffer."""
    if const is not None:
        return const_ints(const)
    return None if buf is None else const_ints(host_values(buf))


def _present(types) -> list:
    return [t for t in types if t is not None]


def _data_check(*index_positions: int, min_inputs: int = 1):
    """Data (input 0) of a movement dtype with a known rank; the listed inputs, when
    present, int32 or int64 index vectors."""
    def check(node, types):
        data = types[0]
        if len(types) < min_inputs or type_key(data) not in DTYPES or rank(data) is None:
            return False
        given = [t for i, t in enumerate(_inputs_by_position(node, types)) if i in index_positions and t is not None]
        return all(type_key(t) in INDEX_TYPES for t in given)

    return check


def _inputs_by_position(node, types) -> list:
    """``types`` (the present inputs) spread back over the node's input positions."""
    present = iter(types)
    return [next(present) if name else None for name in node.inputs]


# -- strided copies --------------------------------------------------------------------------
def transpose_factory(rt: Runtime, node, types, attrs):
    copy = Copier(rt, type_key(types[0]))
    perm = attrs["perm"]

    def run(x):
        order = list(range(x.ndim))[::-1] if perm is None else normalize_axes(perm, x.ndim, node.name)
        strides = contiguous_strides(x.shape)
        y = rt.empty([x.shape[p] for p in order], x.dtype)
        copy(y, x, y.shape, [strides[p] for p in order])
        return y

    return run


def slice_factory(rt: Runtime, node, types, attrs, consts):
    copy = Copier(rt, type_key(types[0]))

    def run(x, starts, ends, axes=None, steps=None):
        values = [_index_input(_constant(consts, i), b) for i, b in enumerate((starts, ends, axes, steps), 1)]
        params = _slice_params(x.ndim, *values, node.name)
        strides = contiguous_strides(x.shape)
        shape, src, src0 = list(x.shape), list(strides), 0
        for axis, (s, e, st) in params.items():
            begin, stop, step = slice(s, e, st).indices(x.shape[axis])
            shape[axis] = len(range(begin, stop, step))
            src0 += begin * strides[axis] if shape[axis] else 0
            src[axis] = strides[axis] * step
        y = rt.empty(shape, x.dtype)
        copy(y, x, shape, src, src0=src0)
        return y

    return run


def concat_factory(rt: Runtime, node, types, attrs):
    copy = Copier(rt, type_key(types[0]))

    def run(*xs):
        axis = normalize_axes([attrs["axis"]], xs[0].ndim, node.name)[0]
        shape = list(xs[0].shape)
        shape[axis] = sum(x.shape[axis] for x in xs)
        y = rt.empty(shape, xs[0].dtype)
        dst = contiguous_strides(shape)
        offset = 0
        for x in xs:
            copy(y, x, x.shape, contiguous_strides(x.shape), dst, dst0=offset * dst[axis])
            offset += x.shape[axis]
        return y

    return run


def split_factory(rt: Runtime, node, types, attrs, consts):
    copy = Copier(rt, type_key(types[0]))
    n_outputs = len(node.outputs)

    def run(x, split=None):
        axis = normalize_axes([attrs["axis"]], x.ndim, node.name)[0]
        sizes = split_sizes(x.shape[axis], _index_input(_constant(consts, 1), split),
                            attrs["num_outputs"] or n_outputs, node.name)
        strides = contiguous_strides(x.shape)
        outs, offset = [], 0
        for size in sizes:
            shape = list(x.shape)
            shape[axis] = size
            y = rt.empty(shape, x.dtype)
            copy(y, x, shape, strides, src0=offset * strides[axis])
            outs.append(y)
            offset += size
        return tuple(outs)

    return run


def expand_factory(rt: Runtime, node, types, attrs, consts):
    copy = Copier(rt, type_key(types[0]))

    def run(x, shape):
        target = _index_input(consts[1], shape)
        try:
            out = np.broadcast_shapes(x.shape, tuple(target))
        except ValueError:
            raise ShapeError(f"cannot expand {list(x.shape)} to {target}", node.name) from None
        padded = (1,) * (len(out) - x.ndim) + tuple(x.shape)
        strides = contiguous_strides(padded)
        y = rt.empty(out, x.dtype)
        copy(y, x, out, [0 if d == 1 else s for d, s in zip(padded, strides)])
        return y

    return run


def constant_of_shape_factory(rt: Runtime, node, types, attrs, consts):
    """The output filled on the device by the runtime (clEnqueueFillBuffer): no kernel."""
    fill = _fill_value(attrs.get("value"))

    def run(shape):
        dims = _index_input(consts[0], shape)
        if any(d < 0 for d in dims):
            raise ShapeError(f"ConstantOfShape shape {dims} has a negative dim", node.name)
        y = rt.empty(tuple(dims), fill.dtype)
        if y.size:
            cl.enqueue_fill_buffer(rt.queue, y.data, fill, 0, y.nbytes)
        return y

    return run


def _constant_of_shape_check(node, types):
    value = node.attrs.get("value")
    dtype = "float32" if value is None else np.asarray(value).dtype.name
    return len(types) == 1 and type_key(types[0]) == "int64" and rank(types[0]) == 1 and dtype in DTYPES


def tile_factory(rt: Runtime, node, types, attrs, consts):
    copy = Copier(rt, type_key(types[0]))

    def run(x, repeats):
        reps = _index_input(consts[1], repeats)
        if len(reps) != x.ndim or any(r < 0 for r in reps):
            raise ShapeError(f"Tile repeats {reps} do not fit a rank-{x.ndim} input", node.name)
        shape = [d * r for d, r in zip(x.shape, reps)]
        y = rt.empty(shape, x.dtype)
        copy(y, x, shape, contiguous_strides(x.shape), period=x.shape)
        return y

    return run


# -- gather and pad ----------------------------------------------------------------------------
def gather_factory(rt: Runtime, node, types, attrs):
    options = f"-DT={word(type_key(types[0]))} -DI={INDEX_TYPES[type_key(types[1])]}"
    kernel = rt.kernel(source("gather.cl"), "gather", options)

    def run(x, indices):
        axis = normalize_axes([attrs["axis"]], x.ndim, node.name)[0]
        a, inner = x.shape[axis], math.prod(x.shape[axis + 1:])
        y = rt.empty(x.shape[:axis] + indices.shape + x.shape[axis + 1:], x.dtype)
        if y.size:
            kernel(rt.queue, (y.size,), None, y.data, x.data, indices.data, np.int64(a),
                   np.int64(indices.size), np.int64(inner), np.int64(y.size))
        return y

    return run


PAD_MODES = ("constant", "edge", "reflect", "wrap")


def pad_factory(rt: Runtime, node, types, attrs, consts):
    mode = attrs["mode"]
    kernel = rt.kernel(source("pad.cl"), "pad", f"-DT={word(type_key(types[0]))} -DMODE_{mode.upper()}")
    metas: dict[tuple, object] = {}

    def run(x, pads, value=None, axes=None):
        widths = _pad_widths(x.ndim, _index_input(consts[1], pads),
                             _index_input(_constant(consts, 3), axes), node.name)
        shape = [d + b + e for d, (b, e) in zip(x.shape, widths)]
        if any(d < 0 for d in shape):
            raise ShapeError(f"Pad removes more than the elements of an axis of {list(x.shape)}", node.name)
        y = rt.empty(shape, x.dtype)
        if not y.size:
            return y
        if mode != "constant" and any(d == 0 and n for d, n in zip(x.shape, shape)):
            raise ShapeError(f"Pad mode '{mode}' cannot fill an axis of an empty input", node.name)
        values = (x.ndim, *shape, *x.shape, *(b for b, _ in widths))
        meta = metas.get(values)
        if meta is None:
            meta = metas[values] = rt.upload(np.asarray(values, np.int64))
        has_value = value is not None and value.size > 0
        kernel(rt.queue, (y.size,), None, y.data, x.data if x.size else y.data,
               value.data if has_value else y.data, np.int32(has_value), meta.data, np.int64(y.size))
        return y

    return run


# -- views ---------------------------------------------------------------------------------------
def reshape_factory(rt: Runtime, node, types, attrs, consts):
    def run(x, shape):
        return x.reshape(reshape_shape(x.shape, _index_input(consts[1], shape), attrs["allowzero"], node.name))

    return run


def flatten_factory(rt: Runtime, node, types, attrs):
    def run(x):
        axis = flatten_axis(attrs["axis"], x.ndim, node.name)
        return x.reshape((math.prod(x.shape[:axis]), math.prod(x.shape[axis:])))

    return run


def squeeze_factory(rt: Runtime, node, types, attrs, consts):
    def run(x, axes=None):
        drop = _squeeze_axes(x.shape, _index_input(_constant(consts, 1), axes), node.name)
        return x.reshape(tuple(d for i, d in enumerate(x.shape) if i not in drop))

    return run


def unsqueeze_factory(rt: Runtime, node, types, attrs, consts):
    def run(x, axes):
        return x.reshape(_unsqueeze_shape(x.shape, _index_input(consts[1], axes), node.name))

    return run


def _dropout_check(node, types):
    """Inference Dropout only: no mask output and no training_mode input."""
    inference = len(node.inputs) < 3 or not node.inputs[2]
    no_mask = len(node.outputs) < 2 or not node.outputs[1]
    ratio_ok = len(types) < 2 or type_key(types[1]) in FLOATS
    return inference and no_mask and ratio_ok and type_key(types[0]) in FLOATS


def _gather_check(node, types):
    return (len(types) == 2 and type_key(types[0]) in DTYPES and rank(types[0]) not in (None, 0)
            and type_key(types[1]) in INDEX_TYPES)


def _concat_check(node, types):
    return (len(types) >= 1 and len({type_key(t) for t in types}) == 1 and type_key(types[0]) in DTYPES
            and rank(types[0]) not in (None, 0))


def _pad_check(node, types):
    by_position = _inputs_by_position(node, types)
    value = by_position[2] if len(by_position) > 2 else None
    return (_data_check(1, 3)(node, types) and node.attrs.get("mode", "constant") in PAD_MODES
            and (value is None or type_key(value) == type_key(types[0])))


def _same_dtype_check(node, types):
    return len(types) == 1 and type_key(types[0]) in DTYPES


KERNELS = {
    "Transpose": OpKernel(_data_check(), transpose_factory),
    "Slice": OpKernel(_data_check(1, 2, 3, 4, min_inputs=3), slice_factory, reads_constants=True),
    "Concat": OpKernel(_concat_check, concat_factory),
    "Split": OpKernel(_data_check(1), split_factory, reads_constants=True),
    "Expand": OpKernel(_data_check(1, min_inputs=2), expand_factory, reads_constants=True),
    "ConstantOfShape": OpKernel(_constant_of_shape_check, constant_of_shape_factory, reads_constants=True),
    "Tile": OpKernel(_data_check(1, min_inputs=2), tile_factory, reads_constants=True),
    "Gather": OpKernel(_gather_check, gather_factory),
    "Pad": OpKernel(_pad_check, pad_factory, reads_constants=True),
    "Reshape": OpKernel(_data_check(1, min_inputs=2), reshape_factory, reads_constants=True),
    "Flatten": OpKernel(_data_check(), flatten_factory),
    "Squeeze": OpKernel(_data_check(1), squeeze_factory, reads_constants=True),
    "Unsqueeze": OpKernel(_data_check(1, min_inputs=2), unsqueeze_factory, reads_constants=True),
    "Identity": OpKernel(_same_dtype_check, lambda rt, node, types, attrs: lambda x: x),
    "Dropout": OpKernel(_dropout_check, lambda rt, node, types, attrs: lambda x, ratio=None: (x,)),
}
