"""Sequences of tensors and optional values: construction, access, splitting, mapping.

At run time a sequence is a Python list of arrays and an absent optional is None,
as in onnxruntime. These ops run on the host (the CPU backend).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import (
    Graph,
    Node,
    OptionalType,
    SequenceType,
    TensorType,
    Value,
    ValueType,
)

from .base import Attr, Decomposer, InferContext, OpDef, Param
from .control import merge_types, run_graph
from .registry import register
from .values import ANY_VALUE, ELEMENT_DTYPES, OPTIONALS, SEQUENCES, TENSOR_OR_SEQUENCE


def _elem(t: ValueType | None) -> TensorType | None:
    """The element type of a sequence type (None when unknown)."""
    return t.elem if isinstance(t, SequenceType) else None


def _position(seq: list, position, op: str, insert: bool = False) -> int:
    """A position in ``seq`` as a non-negative index; inserting also accepts len(seq)."""
    pos = int(np.asarray(position).reshape(-1)[0])
    n = len(seq)
    hi = n if insert else n - 1
    if not -n <= pos <= hi:
        raise ShapeError(f"{op}: position {pos} is outside [{-n}, {hi}] for a sequence of {n} tensors")
    return pos + n if pos < 0 else pos


@register
class SequenceConstruct(OpDef):
    name = "SequenceConstruct"
    inputs = (Param("inputs", "T", variadic=True),)
    outputs = (Param("output_sequence", "S"),)
    constraints = {"T": ELEMENT_DTYPES, "S": SEQUENCES}

    def infer(self, ctx: InferContext):
        elem = None
        for i, t in enumerate(ctx.types):
            elem = t if i == 0 else merge_types(elem, t)
        return [SequenceType(elem)]

    def reference(self, *tensors):
        return [np.asarray(t) for t in tensors]


@register
class SequenceEmpty(OpDef):
    name = "SequenceEmpty"
    outputs = (Param("output", "S"),)
    attrs = {"dtype": Attr("int", None)}
    constraints = {"S": SEQUENCES}

    def infer(self, ctx: InferContext):
        code = ctx.attrs["dtype"]
        return [SequenceType(TensorType("float32" if code is None else dt.from_onnx(code)))]

    def reference(self, dtype=None):
        return []


@register
class SequenceAt(OpDef):
    name = "SequenceAt"
    inputs = (Param("input_sequence", "S"), Param("position", "I"))
    outputs = (Param("tensor", "T"),)
    constraints = {"S": SEQUENCES, "I": ("int32", "int64"), "T": ELEMENT_DTYPES}

    def infer(self, ctx: InferContext):
        return [_elem(ctx.types[0])]

    def reference(self, seq, position):
        return seq[_position(seq, position, self.name)]


@register
class SequenceInsert(OpDef):
    name = "SequenceInsert"
    inputs = (Param("input_sequence", "S"), Param("tensor", "T"), Param("position", "I", optional=True))
    outputs = (Param("output_sequence", "S"),)
    constraints = {"S": SEQUENCES, "T": ELEMENT_DTYPES, "I": ("int32", "int64")}

    def check_dtypes(self, node, types):
        super().check_dtypes(node, types)
        elem = _elem(types[0])
        if elem is not None and isinstance(types[1], TensorType) and elem.dtype != types[1].dtype:
            raise ShapeError(f"SequenceInsert: a {types[1].dtype} tensor cannot join a sequence of {elem.dtype}",
                             node.name or node.op)

    def infer(self, ctx: InferContext):
        elem = _elem(ctx.types[0])
        return [SequenceType(ctx.types[1] if elem is None else merge_types(elem, ctx.types[1]))]

    def reference(self, seq, tensor, position=None):
        out = list(seq)
        if position is None:
            out.append(np.asarray(tensor))
        else:
            out.insert(_position(seq, position, self.name, insert=True), np.asarray(tensor))
        return out


@register
class SequenceErase(OpDef):
    name = "SequenceErase"
    inputs = (Param("input_sequence", "S"), Param("position", "I", optional=True))
    outputs = (Param("output_sequence", "S"),)
    constraints = {"S": SEQUENCES, "I": ("int32", "int64")}

    def infer(self, ctx: InferContext):
        return [ctx.types[0]]

    def reference(self, seq, position=None):
        out = list(seq)
        if not out:
            raise ShapeError("SequenceErase: the sequence is empty")
        del out[-1 if position is None else _position(seq, position, self.name)]
        return out


@register
class SequenceLength(OpDef):
    name = "SequenceLength"
    inputs = (Param("input_sequence", "S"),)
    outputs = (Param("length", "I"),)
    constraints = {"S": SEQUENCES, "I": ("int64",)}

    def infer(self, ctx: InferContext):
        return [TensorType("int64", ())]

    def reference(self, seq):
        return np.array(len(seq), dtype=np.int64)


@register
class SplitToSequence(OpDef):
    """Split a tensor along ``axis`` into a sequence: in pieces of size 1 (squeezed when
    ``keepdims`` is 0), of the scalar ``split`` size (the last may be shorter), or of the
    sizes ``split`` lists."""

    name = "SplitToSequence"
    inputs = (Param("input", "T"), Param("split", "I", optional=True))
    outputs = (Param("output_sequence", "S"),)
    attrs = {"axis": Attr("int", 0), "keepdims": Attr("int", 1)}
    constraints = {"T": ELEMENT_DTYPES, "I": ("int32", "int64"), "S": SEQUENCES}

    def infer(self, ctx: InferContext):
        dtype, shape = ctx.dtype(0), ctx.shape(0)
        if dtype is None:
            return [SequenceType()]
        if shape is None:
            return [SequenceType(TensorType(dtype))]
        if not shape:
            raise ShapeError("SplitToSequence: the input must have rank 1 or more")
        axis = ctx.attrs["axis"] % len(shape)
        dims = list(shape)
        if ctx.has(1) or ctx.attrs["keepdims"]:
            dims[axis] = 1 if not ctx.has(1) else None
        else:
            del dims[axis]
        return [SequenceType(TensorType(dtype, tuple(dims)))]

    def reference(self, x, split=None, *, axis, keepdims):
        x = np.asarray(x)
        if x.ndim == 0:
            raise ShapeError("SplitToSequence: the input must have rank 1 or more")
        if not -x.ndim <= axis < x.ndim:
            raise ShapeError(f"SplitToSequence: axis {axis} is out of range for rank {x.ndim}")
        axis %= x.ndim
        n = x.shape[axis]
        if split is None:
            pieces = np.split(x, n, axis=axis) if n else []
            return [p if keepdims else np.squeeze(p, axis) for p in pieces]
        split = np.asarray(split)
        if split.ndim == 0:
            size = int(split)
            if size <= 0:
                raise ShapeError(f"SplitToSequence: split size {size} must be positive")
            sizes = [size] * (n // size) + ([n % size] if n % size else [])
        else:
            sizes = [int(s) for s in split]
            if sum(sizes) != n or any(s < 0 for s in sizes):
                raise ShapeError(f"SplitToSequence: split sizes {sizes} do not add up to {n}")
        return np.split(x, np.cumsum(sizes)[:-1], axis=axis) if sizes else []


@register
class ConcatFromSequence(OpDef):
    name = "ConcatFromSequence"
    inputs = (Param("input_sequence", "S"),)
    outputs = (Param("concat_result", "T"),)
    attrs = {"axis": Attr("int"), "new_axis": Attr("int", 0)}
    constraints = {"S": SEQUENCES, "T": ELEMENT_DTYPES}

    def infer(self, ctx: InferContext):
        elem = _elem(ctx.types[0])
        if elem is None:
            return [None]
        if elem.shape is None:
            return [TensorType(elem.dtype)]
        rank = len(elem.shape) + (1 if ctx.attrs["new_axis"] else 0)
        axis = ctx.attrs["axis"] % rank
        dims = list(elem.shape)
        if ctx.attrs["new_axis"]:
            dims.insert(axis, None)
        else:
            dims[axis] = None
        return [TensorType(elem.dtype, tuple(dims))]

    def reference(self, seq, *, axis, new_axis):
        if not seq:
            raise ShapeError("ConcatFromSequence: the sequence is empty")
        rank = np.ndim(seq[0]) + (1 if new_axis else 0)
        if not -rank <= axis < rank:
            raise ShapeError(f"ConcatFromSequence: axis {axis} is out of range for rank {rank}")
        if new_axis:
            return np.stack(seq, axis=axis)
        return np.concatenate(seq, axis=axis)


@register
class SequenceMap(OpDef):
    """Applies the body to each position of the input sequence (and of the additional
    sequences; additional tensors are passed whole), collecting its outputs. As in ONNX's
    function, it decomposes into a Loop over the positions."""

    name = "SequenceMap"
    inputs = (Param("input_sequence", "S"), Param("additional_inputs", "V", variadic=True, min_arity=0, homogeneous=False))
    outputs = (Param("out_sequence", "S", variadic=True, homogeneous=False),)
    attrs = {"body": Attr("graph")}
    constraints = {"S": SEQUENCES, "V": ELEMENT_DTYPES + SEQUENCES}
    reads_outer = True
    composite = True

    def infer(self, ctx: InferContext):
        body = ctx.attrs["body"]
        return [SequenceType(t if isinstance(t, TensorType) else None)
                for t in (body.value_types.get(v.name, v.type) for v in body.outputs)]

    def decompose(self, d: Decomposer) -> None:
        """Loop(SequenceLength(seq)) whose body takes position i of each sequence input
        (SequenceAt) and each tensor input whole, runs the map body and appends its
        outputs to sequences that start empty."""
        body: Graph = d.attrs["body"]
        out_types = [body.value_types.get(v.name, v.type) for v in body.outputs]
        if not all(isinstance(t, TensorType) for t in out_types):
            raise ShapeError("SequenceMap needs the dtypes of its body's outputs to decompose")
        if any(t is None for t in d.types[:len(d.inputs)]):
            raise ShapeError("SequenceMap needs to know which inputs are sequences to decompose")
        i, cond = d.fresh("map_i"), d.fresh("map_cond")
        accs = [d.fresh("map_acc") for _ in body.outputs]
        nodes = []
        for name, t, param in zip(d.inputs, d.types, body.inputs):
            if isinstance(t, SequenceType):
                nodes.append(Node("SequenceAt", [name, i], [param.name], name=d.fresh("map_at")))
            else:
                nodes.append(Node("Identity", [name], [param.name], name=d.fresh("map_pass")))
        nodes.extend(body.nodes)
        cond_out = d.fresh("map_cond_out")
        nodes.append(Node("Identity", [cond], [cond_out], name=d.fresh("map_go")))
        acc_outs = [d.fresh("map_acc_out") for _ in accs]
        nodes.extend(Node("SequenceInsert", [acc, v.name], [out], name=d.fresh("map_append"))
                     for acc, v, out in zip(accs, body.outputs, acc_outs))
        loop_body = Graph(nodes, [Value(i, TensorType("int64", ())), Value(cond, TensorType("bool", ()))]
                          + [Value(a, SequenceType(t)) for a, t in zip(accs, out_types)],
                          [Value(cond_out, TensorType("bool", ()))]
                          + [Value(a, SequenceType(t)) for a, t in zip(acc_outs, out_types)],
                          body.initializers, f"{body.name}_loop", body.opset, body.value_types)
        empties = [d.op("SequenceEmpty", dtype=dt.onnx_code(t.dtype)) for t in out_types]
        d.op("Loop", d.op("SequenceLength", d.inputs[0]), "", *empties, outputs=d.outputs, body=loop_body)

    def reference(self, seq, *additional, body, outer):
        n = len(seq)
        for extra in additional:
            if isinstance(extra, list) and len(extra) != n:
                raise ShapeError(f"SequenceMap: an additional sequence has {len(extra)} tensors, "
                                 f"the input sequence {n}")
        results: list[list[np.ndarray]] = [[] for _ in body.outputs]
        for i in range(n):
            args = [seq[i]] + [x[i] if isinstance(x, list) else x for x in additional]
            for k, value in enumerate(run_graph(body, args, outer)):
                results[k].append(np.asarray(value))
        return tuple(results)


@register
class Optional(OpDef):
    name = "Optional"
    inputs = (Param("input", "V", optional=True),)
    outputs = (Param("output", "O"),)
    attrs = {"type": Attr("type_proto", None)}
    constraints = {"V": TENSOR_OR_SEQUENCE, "O": OPTIONALS}

    def infer(self, ctx: InferContext):
        inner = ctx.types[0] if ctx.has(0) else ctx.attrs["type"]
        return [OptionalType(inner)]

    def reference(self, x=None, *, type=None):
        return x


@register
class OptionalHasElement(OpDef):
    name = "OptionalHasElement"
    inputs = (Param("input", "O", optional=True),)
    outputs = (Param("output", "B"),)
    constraints = {"O": ANY_VALUE, "B": ("bool",)}

    def infer(self, ctx: InferContext):
        return [TensorType("bool", ())]

    def reference(self, x: Any = None):
        return np.array(x is not None)


@register
class OptionalGetElement(OpDef):
    name = "OptionalGetElement"
    inputs = (Param("input", "O"),)
    outputs = (Param("output", "V"),)
    constraints = {"O": ANY_VALUE, "V": TENSOR_OR_SEQUENCE}

    def infer(self, ctx: InferContext):
        t = ctx.types[0]
        return [t.elem if isinstance(t, OptionalType) else t]

    def reference(self, x):
        if x is None:
            raise ShapeError("OptionalGetElement: the optional is empty")
        return x
