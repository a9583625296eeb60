"""Indexing ops on the device (``cl/indexing.cl``): GatherElements, GatherND,
ScatterElements, ScatterND, CumSum, Trilu, EyeLike, Range, OneHot and TopK.

Data is float32, int32, int64 or bool (float16 too where elements are only copied);
indices are int32 or int64 (int64 where ONNX says so). Index inputs that only steer
the kernel (CumSum's axis, Trilu's k, Range's bounds, OneHot's depth, TopK's K) are read at
compile time when they are initializers, else through :func:`runtime.host_values`.

Out-of-range indices raise on the CPU; on the device they are clamped to the nearest
end of their axis, as Gather's are, so a kernel never touches memory outside its
buffers. Scatters combine updates in index order, so repeated indices give the
reference's result for every reduction (the last write wins for ``none``): one
work-item per line of ScatterElements' indices, and one per position in ScatterND's
update slices, which walks the index rows in turn (a scatter of single elements
runs its rows one after another)."""
from __future__ import annotations

import math

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import type_key
from dh_core.ops.shape import _range_length
from dh_core.ops.shapes import normalize_axis

from .elementwise import CTYPES
from .movement import INDEX_TYPES, contiguous_strides, word
from .runtime import Runtime, host_values, source
from .table import OpKernel, rank

DTYPES = ("float32", "int32", "int64", "bool")
COPY_DTYPES = DTYPES + ("float16",)
"""Dtypes of ops that only move elements (moved as unsigned words of their size)."""
UNSIGNED = {"float32": "float", "int32": "uint", "int64": "ulong", "bool": "uchar"}
"""The type a kernel combines each dtype in: integers wrap through their unsigned twin."""
REDUCTIONS = ("none", "add", "mul", "max", "min")
ONES = {"float16": "0x3C00", "float32": "0x3F800000", "int32": "1", "int64": "1", "bool": "1"}
"""The bit pattern of one in each output dtype (the kernel writes it as an unsigned word)."""
ONE_HOT_INDEX_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32")


def _options(dtype: str, index_dtype: str | None = None, reduction: str | None = None) -> str:
    """Build options for the element type (a word for plain copies, else the real type)
    and, when given, the index type and the scatter reduction."""
    if reduction in (None, "none"):
        parts = [f"-DT={word(dtype)}"]
    else:
        parts = [f"-DT={CTYPES[dtype]}", f"-DU={UNSIGNED[dtype]}"]
        parts += ["-DFLOAT_DATA"] if dtype == "float32" else ["-DBOOL_DATA"] if dtype == "bool" else []
    if index_dtype is not None:
        parts.append(f"-DI={INDEX_TYPES[index_dtype]}")
    if reduction is not None:
        parts.append(f"-DREDUCE_{reduction.upper()}")
    return " ".join(parts)


def _scalar(const, buf, what: str, node_name: str) -> int:
    """The one integer an index input holds: its initializer, else its host values."""
    values = np.asarray(const if const is not None else host_values(buf)).reshape(-1)
    if values.size != 1:
        raise ShapeError(f"{what} must hold one value, got {values.size}", node_name)
    return int(values[0])


# -- element gathers and scatters ---------------------------------------------------------------
def _element_meta(rt: Runtime, node, data_shape, index_shape, axis_attr: int):
    """The axis, and the metadata the element kernels share: [nd, axis, index shape,
    data strides]; checks the index shape fits the data's other axes."""
    nd = len(data_shape)
    axis = normalize_axis(axis_attr, nd, node.name)
    if len(index_shape) != nd or any(i > d for a, (i, d) in enumerate(zip(index_shape, data_shape)) if a != axis):
        raise ShapeError(f"{node.op} indices {list(index_shape)} do not fit data {list(data_shape)} "
                         f"along axis {axis}", node.name)
    if math.prod(index_shape) and not data_shape[axis]:
        raise ShapeError(f"{node.op} indexes the empty axis {axis} of {list(data_shape)}", node.name)
    meta = np.array([nd, axis, *index_shape, *contiguous_strides(data_shape)], np.int64)
    return axis, rt.constant(meta)


def gather_elements_factory(rt: Runtime, node, types, attrs):
    kernel = rt.kernel(source("indexing.cl"), "gather_elements", _options(type_key(types[0]), type_key(types[1])))

    def run(x, indices):
        axis, meta = _element_meta(rt, node, x.shape, indices.shape, attrs["axis"])
        y = rt.empty(indices.shape, x.dtype)
        if y.size:
            kernel(rt.queue, (y.size,), None, y.data, x.data, indices.data, meta.data,
                   np.int64(x.shape[axis]), np.int64(y.size))
        return y

    return run


def scatter_elements_factory(rt: Runtime, node, types, attrs):
    options = _options(type_key(types[0]), type_key(types[1]), attrs["reduction"])
    kernel = rt.kernel(source("indexing.cl"), "scatter_elements", options)

    def run(x, indices, updates):
        if indices.shape != updates.shape:
            raise ShapeError(f"ScatterElements indices {list(indices.shape)} and updates "
                             f"{list(updates.shape)} differ in shape", node.name)
        axis, meta = _element_meta(rt, node, x.shape, indices.shape, attrs["axis"])
        y = x.copy()
        length = indices.shape[axis]
        lines = indices.size // length if indices.size else 0
        if lines:
            kernel(rt.queue, (lines,), None, y.data, indices.data, updates.data, meta.data, np.int64(x.shape[axis]),
                   np.int64(length), np.int64(math.prod(indices.shape[axis + 1:])), np.int64(lines))
        return y

    return run


# -- row gathers and scatters --------------------------------------------------------------------
def _row_meta(rt: Runtime, data_shape, first: int, m: int):
    """Metadata of index rows naming data axes ``first`` to ``first + m``: [m, dims, strides]."""
    dims = data_shape[first:first + m]
    strides = contiguous_strides(data_shape[first:])[:m]
    return rt.constant(np.array([m, *dims, *strides], np.int64))


def gather_nd_factory(rt: Runtime, node, types, attrs):
    kernel = rt.kernel(source("indexing.cl"), "gather_nd", _options(type_key(types[0])))
    b = attrs["batch_dims"]

    def run(x, indices):
        m = indices.shape[-1] if indices.ndim else -1
        if indices.ndim <= b or x.shape[:b] != indices.shape[:b] or not 1 <= m <= x.ndim - b:
            raise ShapeError(f"GatherND indices {list(indices.shape)} do not fit data {list(x.shape)} "
                             f"with batch_dims {b}", node.name)
        y = rt.empty(indices.shape[:-1] + x.shape[b + m:], x.dtype)
        if not y.size:
            return y
        if not all(x.shape[b:b + m]):
            raise ShapeError(f"GatherND indexes an empty axis of {list(x.shape)}", node.name)
        meta = _row_meta(rt, x.shape, b, m)
        rows_per_batch = math.prod(indices.shape[b:-1])
        kernel(rt.queue, (y.size,), None, y.data, x.data, indices.data, meta.data, np.int64(rows_per_batch),
               np.int64(math.prod(x.shape[b:])), np.int64(math.prod(x.shape[b + m:])), np.int64(y.size))
        return y

    return run


def scatter_nd_factory(rt: Runtime, node, types, attrs):
    kernel = rt.kernel(source("indexing.cl"), "scatter_nd", _options(type_key(types[0]), None, attrs["reduction"]))

    def run(x, indices, updates):
        k = indices.shape[-1] if indices.ndim else -1
        if not 1 <= k <= x.ndim or updates.shape != indices.shape[:-1] + x.shape[k:]:
            raise ShapeError(f"ScatterND indices {list(indices.shape)} and updates {list(updates.shape)} "
                             f"do not fit data {list(x.shape)}", node.name)
        y = x.copy()
        rows, inner = math.prod(indices.shape[:-1]), math.prod(x.shape[k:])
        if not rows * inner:
            return y
        if not all(x.shape[:k]):
            raise ShapeError(f"ScatterND indexes an empty axis of {list(x.shape)}", node.name)
        meta = _row_meta(rt, x.shape, 0, k)
        kernel(rt.queue, (inner,), None, y.data, indices.data, updates.data, meta.data,
               np.int64(rows), np.int64(inner))
        return y

    return run


# -- running sums and masks ------------------------------------------------------------------------
def cumsum_factory(rt: Runtime, node, types, attrs, consts):
    dtype = type_key(types[0])
    kernel = rt.kernel(source("indexing.cl"), "cumsum", f"-DT={CTYPES[dtype]} -DU={UNSIGNED[dtype]}")
    exclusive, reverse = np.int32(bool(attrs["exclusive"])), np.int32(bool(attrs["reverse"]))

    def run(x, axis):
        ax = normalize_axis(_scalar(consts[1], axis, "CumSum axis", node.name), x.ndim, node.name)
        length, inner = x.shape[ax], math.prod(x.shape[ax + 1:])
        lines = x.size // length if length else 0
        y = rt.empty(x.shape, x.dtype)
        if lines:
            kernel(rt.queue, (lines,), None, y.data, x.data, np.int64(length), np.int64(inner),
                   exclusive, reverse, np.int64(lines))
        return y

    return run


def trilu_factory(rt: Runtime, node, types, attrs, consts):
    options = f"-DT={word(type_key(types[0]))}" + (" -DUPPER" if attrs["upper"] else "")
    kernel = rt.kernel(source("indexing.cl"), "trilu", options)
    k_const = consts[1] if len(consts) > 1 else None

    def run(x, k=None):
        diagonal = 0 if k is None else _scalar(k_const, k, "Trilu k", node.name)
        y = rt.empty(x.shape, x.dtype)
        if y.size:
            kernel(rt.queue, (y.size,), None, y.data, x.data, np.int64(x.shape[-2]), np.int64(x.shape[-1]),
                   np.int64(diagonal), np.int64(y.size))
        return y

    return run


def _eye_dtype(node, types) -> str:
    code = node.attrs.get("dtype")
    return type_key(types[0]) if code is None else dt.from_onnx(code)


def eye_like_factory(rt: Runtime, node, types, attrs):
    dtype = _eye_dtype(node, types)
    kernel = rt.kernel(source("indexing.cl"), "eye", f"-DT={word(dtype)} -DONE={ONES[dtype]}")

    def run(x):
        y = rt.empty(x.shape, np.dtype(dtype))
        if y.size:
            kernel(rt.queue, (y.size,), None, y.data, np.int64(x.shape[1]), np.int64(attrs["k"]), np.int64(y.size))
        return y

    return run


def range_factory(rt: Runtime, node, types, attrs, consts):
    dtype = type_key(types[0])
    options = f"-DT={CTYPES[dtype]}" + (" -DFLOAT_DATA" if dtype == "float32" else "")
    kernel = rt.kernel(source("indexing.cl"), "range_values", options)
    scalar = np.dtype(dtype).type

    def run(start, limit, delta):
        values = []
        for const, buf in zip(consts, (start, limit, delta)):
            value = np.asarray(const if const is not None else host_values(buf))
            if value.size != 1:
                raise ShapeError(f"Range takes scalars, got shape {list(value.shape)}", node.name)
            values.append(value.reshape(()))
        s, l, step = values
        if step == 0:
            raise ShapeError("Range delta cannot be 0", node.name)
        host = float if dtype == "float32" else int
        n = _range_length(host(s), host(l), host(step))
        y = rt.empty((n,), np.dtype(dtype))
        if n:
            kernel(rt.queue, (n,), None, y.data, scalar(s), scalar(step), np.int64(n))
        return y

    return run


def one_hot_factory(rt: Runtime, node, types, attrs, consts):
    index_dtype = type_key(types[0])
    options = f"-DT={word(type_key(types[2]))} -DI={CTYPES[index_dtype]}"
    options += " -DFLOAT_INDEX" if index_dtype == "float32" else ""
    kernel = rt.kernel(source("indexing.cl"), "one_hot", options)

    def run(indices, depth, values):
        n = _scalar(consts[1], depth, "OneHot depth", node.name)
        if n < 1:
            raise ShapeError(f"OneHot depth must be positive, got {n}", node.name)
        if values.size < 2:
            raise ShapeError(f"OneHot values need an off and an on value, got {values.size}", node.name)
        axis = normalize_axis(attrs["axis"], indices.ndim + 1, node.name)
        y = rt.empty(indices.shape[:axis] + (n,) + indices.shape[axis:], values.dtype)
        if y.size:
            kernel(rt.queue, (y.size,), None, y.data, indices.data, values.data, np.int64(n),
                   np.int64(math.prod(indices.shape[axis:])), np.int64(y.size))
        return y

    return run


SELECT_RATIO = 8
"""TopK picks its results one by one per line (K * R steps per line) when K is at most
the axis length over this, and else ranks every element (R steps per element)."""


def top_k_factory(rt: Runtime, node, types, attrs, consts):
    """Always sorted (ONNX leaves the order undefined for ``sorted=0``; the reference sorts)."""
    dtype = type_key(types[0])
    options = f"-DT={CTYPES[dtype]}" + (" -DFLOAT_DATA" if dtype == "float32" else "")
    options += " -DLARGEST" if attrs["largest"] else ""
    rank_kernel = rt.kernel(source("indexing.cl"), "top_k_rank", options)
    select_kernel = rt.kernel(source("indexing.cl"), "top_k_select", options)

    def run(x, k):
        axis = normalize_axis(attrs["axis"], x.ndim, node.name)
        count, length = _scalar(consts[1], k, "TopK K", node.name), x.shape[axis]
        if not 0 <= count <= length:
            raise ShapeError(f"TopK K={count} is outside [0, {length}] for axis {axis} of {list(x.shape)}",
                             node.name)
        shape = x.shape[:axis] + (count,) + x.shape[axis + 1:]
        values, indices = rt.empty(shape, x.dtype), rt.empty(shape, np.int64)
        if not values.size:
            return values, indices
        inner = np.int64(math.prod(x.shape[axis + 1:]))
        if count * SELECT_RATIO <= length:
            lines = x.size // length
            select_kernel(rt.queue, (lines,), None, values.data, indices.data, x.data, np.int64(length), inner,
                          np.int64(count), np.int64(lines))
        else:
            rank_kernel(rt.queue, (x.size,), None, values.data, indices.data, x.data, np.int64(length), inner,
                        np.int64(count), np.int64(x.size))
        return values, indices

    return run


# -- checks ------------------------------------------------------------------------------------------
def _ranked(t, dtypes, min_rank: int = 0) -> bool:
    return type_key(t) in dtypes and rank(t) is not None and rank(t) >= min_rank


def _reduction_dtypes(node) -> tuple[str, ...]:
    """Any copy dtype without a reduction; the combinable ones with one."""
    reduction = node.attrs.get("reduction", "none")
    if reduction not in REDUCTIONS:
        return ()
    return COPY_DTYPES if reduction == "none" else DTYPES


def _gather_elements_check(node, types):
    return len(types) == 2 and _ranked(types[0], COPY_DTYPES, 1) and type_key(types[1]) in INDEX_TYPES


def _scatter_elements_check(node, types):
    return (len(types) == 3 and _ranked(types[0], _reduction_dtypes(node), 1)
            and type_key(types[1]) in INDEX_TYPES and type_key(types[2]) == type_key(types[0]))


def _gather_nd_check(node, types):
    return len(types) == 2 and _ranked(types[0], COPY_DTYPES, 1) and type_key(types[1]) == "int64"


def _scatter_nd_check(node, types):
    return (len(types) == 3 and _ranked(types[0], _reduction_dtypes(node), 1)
            and type_key(types[1]) == "int64" and type_key(types[2]) == type_key(types[0]))


def _cumsum_check(node, types):
    return (len(types) == 2 and _ranked(types[0], ("float32", "int32", "int64"), 1)
            and type_key(types[1]) in INDEX_TYPES)


def _trilu_check(node, types):
    return _ranked(types[0], COPY_DTYPES, 2) and all(type_key(t) == "int64" for t in types[1:])


def _eye_like_check(node, types):
    return (len(types) == 1 and type_key(types[0]) in COPY_DTYPES and rank(types[0]) == 2
            and _eye_dtype(node, types) in COPY_DTYPES)


def _range_check(node, types):
    return len(types) == 3 and len({type_key(t) for t in types}) == 1 and type_key(types[0]) in (
        "float32", "int32", "int64")


def _one_hot_check(node, types):
    """Integer or float32 indices, a depth of any numeric dtype (read on the host),
    values of any fixed-size dtype (only copied)."""
    return (len(types) == 3 and type_key(types[0]) in ONE_HOT_INDEX_DTYPES and rank(types[0]) is not None
            and type_key(types[1]) in dt.NUMERIC and type_key(types[2]) in dt.ALL)


def _top_k_check(node, types):
    return (len(types) == 2 and _ranked(types[0], ("float32", "int32", "int64"), 1)
            and type_key(types[1]) == "int64")


KERNELS = {
    "GatherElements": OpKernel(_gather_elements_check, gather_elements_factory),
    "ScatterElements": OpKernel(_scatter_elements_check, scatter_elements_factory),
    "GatherND": OpKernel(_gather_nd_check, gather_nd_factory),
    "ScatterND": OpKernel(_scatter_nd_check, scatter_nd_factory),
    "CumSum": OpKernel(_cumsum_check, cumsum_factory, reads_constants=True),
    "Trilu": OpKernel(_trilu_check, trilu_factory, reads_constants=True),
    "EyeLike": OpKernel(_eye_like_check, eye_like_factory),
    "Range": OpKernel(_range_check, range_factory, reads_constants=True),
    "OneHot": OpKernel(_one_hot_check, one_hot_factory, reads_constants=True),
    "TopK": OpKernel(_top_k_check, top_k_factory, reads_constants=True),
}
