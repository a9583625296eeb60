"""Opset normalization: rewrite a node of an older opset (6 to 27) into the IR's
canonical form, that of opset 28.

Each rule covers one change in an op's version history (``onnx.defs.get_schema(op,
version)``) that the canonical form does not accept as it is:

- attributes that became inputs: the axes of Reduce* (ReduceSum before 13, the others
  before 18), Split's ``split`` (before 13), Squeeze/Unsqueeze ``axes`` (before 13),
  Pad's ``pads`` and ``value`` (before 11), Clip's ``min``/``max`` (before 11),
  Slice's ``starts``/``ends``/``axes`` (before 10), TopK's ``k`` (before 10),
  Dropout's ``ratio`` (before 12), DFT's ``axis`` (before 20, default 1 then);
- Split without sizes or ``num_outputs`` (before 18): equal parts, one per output;
- ops renamed or replaced: Upsample becomes Resize (nearest: asymmetric, floor),
  Scatter becomes ScatterElements, Resize of opset 10 takes the empty ``roi`` input;
  Resize 11-12's empty ``roi``/``scales`` placeholders become omitted inputs;
- semantics: Softmax, LogSoftmax and Hardmax before 13 work on the input coerced to
  2-D around ``axis`` (default 1): the rewrite flattens, applies the op on the last
  axis and reshapes back; GroupNormalization before 21 took per-group scale and
  bias: refused, since dh knows only the per-channel form;
- opset 6's limited broadcasting of binary ops (``broadcast=1`` with ``axis``: the
  second operand's dims align with the first's from ``axis``) becomes a reshape of
  the second operand with trailing ones (PRelu's per-channel slope too); Gemm's
  ``broadcast`` goes;
- Scan 8's batch axis: an outer Scan over the batch runs today's Scan per row;
- attributes that were removed and mean nothing today (``consumed_inputs``,
  ``is_test``, BatchNormalization's ``spatial=1``).

Anything the canonical form cannot express raises :class:`ModelLoadError`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import numpy as np

from dh_core.errors import ModelLoadError
from dh_core.ir import Graph, Node, Value


class Emitter(Protocol):
    """What a rule may add to the graph being imported."""

    def const(self, base: str, value: np.ndarray) -> str:
        """Register a constant (an initializer); returns its fresh name."""

    def value(self, base: str) -> str:
        """A fresh value name."""

    def node(self, op: str, inputs: list[str], outputs: list[str], attrs: dict, base: str) -> Node:
        """A new node with a fresh name."""

    def constant(self, name: str) -> np.ndarray | None:
        """The value of a constant (initializer or Constant node) seen so far, or None."""

    def dtype(self, name: str) -> str | None:
        """The dtype the model declares for a value (or a constant's), or None."""


Rule = Callable[[Node, int, Emitter], list[Node]]

REDUCE_AXES_INPUT_SINCE = {
    "ReduceSum": 13,
    **{op: 18 for op in ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                         "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare")},
}
"""When each reduction's ``axes`` attribute became its second input."""

REMOVED_ATTRS = ("consumed_inputs", "is_test")
"""Attributes of old opsets that no longer exist and change nothing at inference."""


def normalize(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """The node (or the nodes replacing it) in the canonical form."""
    for key in REMOVED_ATTRS:
        node.attrs.pop(key, None)
    nodes = [node]
    for since, rule in RULES.get(node.op, ()):
        if opset < since:
            nodes = [out for n in nodes for out in (rule(n, opset, emit) if n.op == node.op else [n])]
    return nodes


# -- attributes that became inputs -----------------------------------------------------
def _int64_input(node: Node, attr: str, position: int, emit: Emitter, shape_1d: bool = True) -> None:
    """Move an int list (or int) attribute into input ``position`` as an int64 constant."""
    value = node.attrs.pop(attr, None)
    if value is None:
        return
    array = np.asarray(value, dtype=np.int64)
    if shape_1d:
        array = array.reshape(-1)
    _set_input(node, position, emit.const(f"{node.name}_{attr}", array))


def _set_input(node: Node, position: int, name: str) -> None:
    while len(node.inputs) < position:
        node.inputs.append("")
    if len(node.inputs) == position:
        node.inputs.append(name)
    else:
        node.inputs[position] = name


def _like_input(node: Node, attr: str, value: float | None, position: int, emit: Emitter) -> list[Node]:
    """Input ``position`` holds ``value`` in the dtype of input 0: a constant of that
    dtype when the model declares it, else a CastLike of a float64 constant (for Clip's
    bounds and Pad's value, whose type is the data's)."""
    if value is None:
        return []
    dtype = emit.dtype(node.inputs[0])
    if dtype is not None:
        _set_input(node, position, emit.const(f"{node.name}_{attr}", np.asarray(value, dtype=dtype)))
        return []
    const = emit.const(f"{node.name}_{attr}", np.asarray(value, dtype=np.float64))
    cast = emit.node("CastLike", [const, node.inputs[0]], [emit.value(f"{node.name}_{attr}_cast")], {},
                     f"{node.name}_{attr}")
    _set_input(node, position, cast.outputs[0])
    return [cast]


def reduce_axes(node: Node, opset: int, emit: Emitter) -> list[Node]:
    _int64_input(node, "axes", 1, emit)
    return [node]


def axes_input(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Squeeze and Unsqueeze before 13."""
    _int64_input(node, "axes", 1, emit)
    return [node]


def split_sizes(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Split before 13: ``split`` attribute -> input."""
    _int64_input(node, "split", 1, emit)
    return [node]


def split_parts(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Split before 18 without sizes: as many equal parts as the node has outputs."""
    has_sizes = len(node.inputs) > 1 and node.inputs[1]
    if not has_sizes and "num_outputs" not in node.attrs:
        node.attrs["num_outputs"] = len(node.outputs)
    return [node]


def pad_inputs(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Pad before 11: ``pads`` and ``value`` attributes -> inputs."""
    pads = node.attrs.pop("pads", None)
    if pads is None:
        raise ModelLoadError(f"node '{node.name}': Pad of opset {opset} needs its pads attribute")
    _set_input(node, 1, emit.const(f"{node.name}_pads", np.asarray(pads, dtype=np.int64)))
    value = node.attrs.pop("value", 0.0)
    return [*(_like_input(node, "value", value, 2, emit) if value != 0.0 else []), node]


def clip_inputs(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Clip before 11: ``min`` and ``max`` attributes -> inputs of the data's dtype."""
    low = node.attrs.pop("min", None)
    high = node.attrs.pop("max", None)
    added = _like_input(node, "min", low, 1, emit)
    added += _like_input(node, "max", high, 2, emit)
    return [*added, node]


def slice_inputs(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Slice before 10: ``starts``, ``ends``, ``axes`` attributes -> inputs."""
    for position, attr in enumerate(("starts", "ends", "axes"), start=1):
        _int64_input(node, attr, position, emit)
    return [node]


def topk_k(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """TopK before 10: ``k`` attribute -> a one-element input."""
    _int64_input(node, "k", 1, emit)
    return [node]


def dropout_ratio(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Dropout before 12: ``ratio`` attribute -> input (ignored at inference)."""
    ratio = node.attrs.pop("ratio", None)
    if ratio is not None:
        _set_input(node, 1, emit.const(f"{node.name}_ratio", np.asarray(ratio, dtype=np.float32)))
    return [node]


def dft_axis(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """DFT before 20: ``axis`` attribute (default 1) -> a scalar input (default -2 now)."""
    axis = node.attrs.pop("axis", 1)
    _set_input(node, 2, emit.const(f"{node.name}_axis", np.asarray(axis, dtype=np.int64)))
    return [node]


def old_broadcast(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Binary ops before 7: ``broadcast=1`` with ``axis`` aligns B with A's dims from
    ``axis``: B gets trailing ones up to A's rank (computed at run time, folded when
    the shapes are known). Without ``axis`` the old rule is numpy's suffix rule."""
    broadcast = node.attrs.pop("broadcast", 0)
    axis = node.attrs.pop("axis", None)
    if not broadcast or axis is None:
        return [node]
    a, b = node.inputs[0], node.inputs[1]
    base = node.name

    def step(op: str, inputs: list[str], attrs: dict | None = None, tag: str = "") -> Node:
        return emit.node(op, inputs, [emit.value(f"{base}_{tag}")], attrs or {}, f"{base}_{tag}")

    shape_a = step("Shape", [a], tag="shape_a")
    shape_b = step("Shape", [b], tag="shape_b")
    rank_a = step("Size", [shape_a.outputs[0]], tag="rank_a")
    rank_b = step("Size", [shape_b.outputs[0]], tag="rank_b")
    start = emit.const(f"{base}_axis", np.asarray(axis, dtype=np.int64))
    after_axis = step("Sub", [rank_a.outputs[0], start], tag="after_axis")
    ones_count = step("Sub", [after_axis.outputs[0], rank_b.outputs[0]], tag="ones_count")
    zero = emit.const(f"{base}_zero", np.asarray([0], dtype=np.int64))
    count_1d = step("Unsqueeze", [ones_count.outputs[0], zero], tag="ones_count_1d")
    ones = step("ConstantOfShape", [count_1d.outputs[0]], {"value": np.ones(1, np.int64)}, tag="ones")
    target = step("Concat", [shape_b.outputs[0], ones.outputs[0]], {"axis": 0}, tag="target")
    aligned = step("Reshape", [b, target.outputs[0]], tag="aligned")
    node.inputs = [a, aligned.outputs[0]]
    return [shape_a, shape_b, rank_a, rank_b, after_axis, ones_count, count_1d, ones, target, aligned, node]


def prelu_channels(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """PRelu before 7: a slope of more than one element is per channel (axis 1)."""
    slope = emit.constant(node.inputs[1])
    if slope is not None and slope.size == 1:
        return [node]
    node.attrs.update(broadcast=1, axis=1)
    return old_broadcast(node, opset, emit)


def drop_broadcast(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Gemm before 7: C always broadcasts now."""
    node.attrs.pop("broadcast", None)
    return [node]


# -- renamed and replaced ops ----------------------------------------------------------
def upsample(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Upsample (7-9) -> Resize with Upsample's coordinates: asymmetric, nearest floor."""
    mode = node.attrs.pop("mode", "nearest")
    if mode not in ("nearest", "linear"):
        raise ModelLoadError(f"node '{node.name}': Upsample mode '{mode}' is not supported")
    scales = node.attrs.pop("scales", None)
    if scales is not None:
        scales_name = emit.const(f"{node.name}_scales", np.asarray(scales, dtype=np.float32))
    else:
        scales_name = node.inputs[1]
    attrs = {"mode": mode, "coordinate_transformation_mode": "asymmetric"}
    if mode == "nearest":
        attrs["nearest_mode"] = "floor"
    return [Node("Resize", [node.inputs[0], "", scales_name], node.outputs, attrs, node.name)]


def resize_10(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Resize 10 (X, scales) had Upsample's coordinates."""
    node.inputs = [node.inputs[0], "", node.inputs[1]]
    node.attrs["coordinate_transformation_mode"] = "asymmetric"
    if node.attrs.get("mode", "nearest") == "nearest":
        node.attrs["nearest_mode"] = "floor"
    return [node]


def resize_11(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Resize 11-12: required ``roi`` and ``scales`` inputs given as empty constants
    mean "not given"; ``tf_half_pixel_for_nn`` has no canonical equivalent."""
    if node.attrs.get("coordinate_transformation_mode") == "tf_half_pixel_for_nn":
        raise ModelLoadError(f"node '{node.name}': Resize coordinate_transformation_mode "
                             f"'tf_half_pixel_for_nn' (opset {opset}) has no equivalent in opset 13 and later")
    for position in (1, 2):
        if position < len(node.inputs) and node.inputs[position]:
            value = emit.constant(node.inputs[position])
            if value is not None and value.size == 0:
                node.inputs[position] = ""
    return [node]


def scatter(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Scatter (9-10) is ScatterElements under its old name."""
    return [Node("ScatterElements", node.inputs, node.outputs, node.attrs, node.name)]


def batchnorm(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """BatchNormalization before 9: ``spatial`` (default 1) is gone; only 1 stays expressible;
    before 14 the extra outputs exist only in training mode."""
    if node.attrs.pop("spatial", 1) != 1:
        raise ModelLoadError(f"node '{node.name}': BatchNormalization with spatial=0 (opset {opset}) "
                             "is not supported")
    if len([o for o in node.outputs if o]) > 1:
        raise ModelLoadError(f"node '{node.name}': BatchNormalization of opset {opset} in training mode "
                             "(more than one output) is not supported")
    node.outputs = node.outputs[:1]
    return [node]


# -- semantic changes ------------------------------------------------------------------
def group_norm(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """GroupNormalization 18-20 scaled per group; the canonical op scales per channel."""
    raise ModelLoadError(f"node '{node.name}': GroupNormalization of opset {opset} (per-group scale and "
                         "bias) is not supported; opset 21 and later are")


def coerced_2d(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Softmax/LogSoftmax/Hardmax before 13: flatten to 2-D at ``axis``, apply on the
    last axis, reshape to the input's shape."""
    axis = node.attrs.pop("axis", 1)
    x = node.inputs[0]
    flat = emit.node("Flatten", [x], [emit.value(f"{node.name}_2d")], {"axis": axis}, f"{node.name}_flatten")
    shape = emit.node("Shape", [x], [emit.value(f"{node.name}_shape")], {}, f"{node.name}_shape")
    out2d = emit.value(f"{node.name}_out2d")
    core = Node(node.op, [flat.outputs[0]], [out2d], {"axis": -1}, node.name)
    back = emit.node("Reshape", [out2d, shape.outputs[0]], list(node.outputs), {}, f"{node.name}_reshape")
    return [flat, shape, core, back]


def batched_scan(node: Node, opset: int, emit: Emitter) -> list[Node]:
    """Scan 8 worked on a batch: every input had a leading batch axis (scan inputs then
    scanned along axis 1), and ``sequence_lens`` could shorten rows. The rewrite is an
    outer Scan over the batch axis whose body is today's Scan over one row; rows of
    different lengths are refused."""
    if node.inputs and node.inputs[0]:
        raise ModelLoadError(f"node '{node.name}': Scan before opset 9 with a sequence_lens input is not "
                             f"supported (rows of different lengths)")
    values = node.inputs[1:]
    n_scan = node.attrs["num_scan_inputs"]
    inner_attrs = {"body": node.attrs["body"], "num_scan_inputs": n_scan}
    if "directions" in node.attrs:
        inner_attrs["scan_input_directions"] = list(node.attrs["directions"])
    rows = [emit.value(f"{name}_row") for name in values]
    results = [emit.value(f"{name}_row") for name in node.outputs]
    inner = emit.node("Scan", rows, results, inner_attrs, f"{node.name}_row")
    body = Graph([inner], [Value(r) for r in rows], [Value(r) for r in results], name=f"{node.name}_batch",
                 opset=node.attrs["body"].opset)
    return [Node("Scan", list(values), list(node.outputs), {"body": body, "num_scan_inputs": len(values)},
                 node.name)]


OLD_BROADCAST_OPS = ("Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less")
"""Binary ops that had ``broadcast`` and ``axis`` attributes before opset 7."""

RULES: dict[str, list[tuple[int, Rule]]] = {
    **{op: [(7, old_broadcast)] for op in OLD_BROADCAST_OPS},
    "Gemm": [(7, drop_broadcast)],
    "PRelu": [(7, prelu_channels)],
    **{op: [(since, reduce_axes)] for op, since in REDUCE_AXES_INPUT_SINCE.items()},
    "Squeeze": [(13, axes_input)],
    "Unsqueeze": [(13, axes_input)],
    "Split": [(13, split_sizes), (18, split_parts)],
    "Pad": [(11, pad_inputs)],
    "Clip": [(11, clip_inputs)],
    "Slice": [(10, slice_inputs)],
    "TopK": [(10, topk_k)],
    "Dropout": [(12, dropout_ratio)],
    "DFT": [(20, dft_axis)],
    "Upsample": [(29, upsample)],
    "Scatter": [(29, scatter)],
    "Resize": [(11, resize_10), (13, resize_11)],
    "BatchNormalization": [(14, batchnorm)],
    "GroupNormalization": [(21, group_norm)],
    "Softmax": [(13, coerced_2d)],
    "LogSoftmax": [(13, coerced_2d)],
    "Hardmax": [(13, coerced_2d)],
    "Scan": [(9, batched_scan)],
}
"""op -> [(first opset that no longer needs the rule, rule)], applied in order."""
