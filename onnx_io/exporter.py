"""ONNX out: write a dh Graph as an ``onnx.ModelProto``.

Nodes are in the IR's canonical form; exporting to an older opset moves inputs back
into attributes where the older opset had them (the axes of Reduce* before opset 18),
writes Split's ``num_outputs`` (18) as the number of outputs, CastLike (15) as a Cast
to the known dtype of its second input, and drops attributes the older opset lacks
when they hold their default. Anything else an older opset cannot express raises
:class:`GraphError` naming the node; with no opset asked for, the export instead
moves up to the oldest opset that expresses it.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, NodeProto, TypeProto, ValueInfoProto, helper, numpy_helper

from dh_core import __version__
from dh_core import dtypes as dt
from dh_core.errors import DHError, GraphError
from dh_core.ir import (DEFAULT_OPSET, DOMAIN_OPSETS, Graph, Node, OptionalType, SequenceType, TensorType, ValueType,
                        node_reads)

from dh_core.ops import registry

from .importer import REDUCE_AXES_INPUT_SINCE, REDUCE_AXES_MOVED

MIN_OPSET = 13
"""The oldest opset the exporter writes (older ones need more attribute moves than it makes)."""


SPLIT_NUM_OUTPUTS_SINCE = 18
CASTLIKE_SINCE = 15


class _NeedsOpset(GraphError):
    """A node the target opset cannot express, but ``opset`` can."""

    def __init__(self, message: str, node: str, opset: int):
        super().__init__(message, node)
        self.opset = opset


def export_model(graph: Graph, opset: int | None = None) -> onnx.ModelProto:
    """The graph as an ONNX model at ``opset`` (default: the graph's own opset, at least
    the oldest one the exporter writes, or the oldest opset that expresses every node)."""
    target = max(MIN_OPSET, min(graph.opset, DEFAULT_OPSET)) if opset is None else opset
    if not MIN_OPSET <= target <= DEFAULT_OPSET:
        raise GraphError(f"cannot export to opset {target}: dh exports opset {MIN_OPSET} to {DEFAULT_OPSET}")
    while True:
        exporter = _Exporter(target, graph)
        try:
            proto = exporter.graph(graph, [])
            break
        except _NeedsOpset as exc:
            if opset is not None:
                raise GraphError(str(exc)) from None
            target = exc.opset
    opsets = [helper.make_opsetid("", target)]
    opsets += [helper.make_opsetid(domain, DOMAIN_OPSETS.get(domain, 1)) for domain in sorted(exporter.domains)]
    model = helper.make_model(proto, opset_imports=opsets, producer_name="dh", producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    return model


def newest_runtime_opset() -> int:
    """The newest opset (at most dh's) whose models the installed onnxruntime loads;
    dh's newest when onnxruntime is not installed."""
    try:
        import onnxruntime
    except ImportError:
        return DEFAULT_OPSET
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "probe", [x], [y])
    for opset in range(DEFAULT_OPSET, MIN_OPSET, -1):
        opsets = [helper.make_opsetid("", opset)]
        model = helper.make_model(graph, opset_imports=opsets)
        model.ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
        if _runtime_loads(onnxruntime, model):
            return opset
    return MIN_OPSET


def _runtime_loads(onnxruntime: Any, model: onnx.ModelProto) -> bool:
    try:
        onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except Exception:  # onnxruntime's errors have no common public base class
        return False
    return True


class _Exporter:
    def __init__(self, opset: int, main: Graph):
        self.opset = opset
        self.main = main
        self.inferred: dict[str, TensorType] | None = None
        self.domains: set[str] = set()

    def graph(self, graph: Graph, outer: list[dict[str, np.ndarray]]) -> GraphProto:
        scopes = [*outer, graph.initializers]
        nodes = [self.lower(n, scopes) for n in graph.nodes]
        read = {name for n in nodes for name in node_reads(n)} | set(graph.output_names)
        consumed = {name for n in graph.nodes for name in n.inputs if name} - read
        inits = [numpy_helper.from_array(np.asarray(arr), name)
                 for name, arr in graph.initializers.items() if name not in consumed]
        types = graph.value_types
        inputs = [_value_info(v.name, types.get(v.name, v.type)) for v in graph.inputs]
        outputs = [_value_info(v.name, types.get(v.name, v.type)) for v in graph.outputs]
        declared = set(graph.input_names) | set(graph.output_names) | set(graph.initializers)
        produced = [o for n in nodes for o in n.outputs if o and o not in declared]
        value_info = [_value_info(name, types[name]) for name in produced if name in types]
        return helper.make_graph([self.node(n, scopes) for n in nodes], graph.name, inputs, outputs,
                                 inits, value_info=value_info)

    def lower(self, node: Node, scopes: list[dict[str, np.ndarray]]) -> Node:
        """The node in the form of the target opset."""
        if node.domain:
            return _without_derived_attrs(node)
        if node.op == "Split" and self.opset < SPLIT_NUM_OUTPUTS_SINCE and "num_outputs" in node.attrs:
            return self.split_parts(node)
        if node.op == "CastLike" and self.opset < CASTLIKE_SINCE:
            return self.cast_like(node)
        if node.op not in REDUCE_AXES_MOVED or self.opset >= REDUCE_AXES_INPUT_SINCE:
            return node
        attrs = dict(node.attrs)
        axes_name = node.inputs[1] if len(node.inputs) > 1 else ""
        if axes_name:
            axes = next((s[axes_name] for s in reversed(scopes) if axes_name in s), None)
            if axes is None:
                raise GraphError(f"cannot export {node.op} to opset {self.opset}: its axes input "
                                 f"'{axes_name}' is not a constant", node.name)
            attrs["axes"] = [int(a) for a in np.asarray(axes).reshape(-1)]
            if attrs["axes"]:
                attrs.pop("noop_with_empty_axes", None)
        return Node(node.op, node.inputs[:1], list(node.outputs), attrs, node.name, node.domain)

    def split_parts(self, node: Node) -> Node:
        """Split without sizes had as many equal parts as outputs before ``num_outputs``."""
        attrs = dict(node.attrs)
        parts = attrs.pop("num_outputs")
        if parts != len(node.outputs) or (len(node.inputs) > 1 and node.inputs[1]):
            raise _NeedsOpset(f"cannot export Split with num_outputs={parts} and {len(node.outputs)} outputs "
                              f"to opset {self.opset}", node.name, SPLIT_NUM_OUTPUTS_SINCE)
        return Node(node.op, list(node.inputs), list(node.outputs), attrs, node.name, node.domain)

    def cast_like(self, node: Node) -> Node:
        """CastLike before opset 15: a Cast to the dtype of the second input, when known."""
        dtype = self.dtype_of(node.inputs[1])
        if dtype is None:
            raise _NeedsOpset(f"cannot export CastLike to opset {self.opset}: the dtype of its second input "
                              f"'{node.inputs[1]}' is unknown (CastLike exists from opset {CASTLIKE_SINCE})",
                              node.name, CASTLIKE_SINCE)
        attrs = {"to": dt.onnx_code(dtype)}
        if node.attrs.get("saturate", 1) != 1:
            attrs["saturate"] = node.attrs["saturate"]
        return Node("Cast", node.inputs[:1], list(node.outputs), attrs, node.name)

    def dtype_of(self, name: str) -> str | None:
        """A value's dtype: declared, or found by type inference over the graph."""
        known = self.main.value_types.get(name)
        if known is None:
            if self.inferred is None:
                self.inferred = _inferred_types(self.main)
            known = self.inferred.get(name)
        return None if known is None else known.dtype

    def node(self, node: Node, scopes: list[dict[str, np.ndarray]]) -> NodeProto:
        schema = None
        if node.domain:
            self.domains.add(node.domain)
        else:
            try:
                schema = onnx.defs.get_schema(node.op, self.opset)
            except onnx.defs.SchemaError:
                raise GraphError(f"op {node.op} does not exist at opset {self.opset}", node.name) from None
        inputs = list(node.inputs)
        if schema is not None and len(inputs) > schema.max_input:
            if any(inputs[schema.max_input:]):
                raise GraphError(f"{node.op} takes at most {schema.max_input} inputs at opset {self.opset}, "
                                 f"not {len(inputs)}", node.name)
            inputs = inputs[:schema.max_input]
        proto = helper.make_node(node.op, inputs, node.outputs, name=node.name or None,
                                 domain=node.domain or None)
        for key, value in node.attrs.items():
            kind = None
            if schema is not None:
                if key not in schema.attributes:
                    if _is_newest_default(node.op, key, value):
                        continue
                    raise GraphError(f"{node.op} has no attribute '{key}' at opset {self.opset}", node.name)
                kind = int(schema.attributes[key].type)
            try:
                proto.attribute.append(self.attribute(key, value, kind, scopes))
            except (TypeError, ValueError) as exc:
                raise GraphError(f"attribute '{key}' cannot be written: {exc}", node.name) from None
        return proto

    def attribute(self, key: str, value: Any, kind: int | None, scopes) -> AttributeProto:
        if isinstance(value, Graph):
            return helper.make_attribute(key, self.graph(value, scopes))
        if isinstance(value, np.ndarray):
            return helper.make_attribute(key, numpy_helper.from_array(value))
        if isinstance(value, (TensorType, SequenceType, OptionalType)):
            return helper.make_attribute(key, type_proto(value))
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], Graph):
            return helper.make_attribute(key, [self.graph(g, scopes) for g in value])
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
            return helper.make_attribute(key, [numpy_helper.from_array(t) for t in value])
        return helper.make_attribute(key, _coerce(value, kind), attr_type=kind)


def _without_derived_attrs(node: Node) -> Node:
    """The node without the attributes the IR derives from the graph (Gradient's body)."""
    opdef = registry.find(node.op, node.domain)
    if opdef is None or not opdef.derived_attrs:
        return node
    attrs = {k: v for k, v in node.attrs.items() if k not in opdef.derived_attrs}
    return Node(node.op, list(node.inputs), list(node.outputs), attrs, node.name, node.domain)


def _inferred_types(graph: Graph) -> dict[str, TensorType]:
    """The value types type inference finds over a copy of the graph; the declared ones
    alone when it cannot run (ops outside the library, inconsistent declarations)."""
    from dh_core.passes import infer_types

    copy = graph.copy()
    try:
        infer_types(copy)
    except DHError:
        pass
    return copy.value_types


def _coerce(value: Any, kind: int | None) -> Any:
    """A Python value of the attribute's declared kind (an int 1 for a float attribute...)."""
    if isinstance(value, np.generic):
        value = value.item()
    if kind == AttributeProto.FLOAT:
        return float(value)
    if kind == AttributeProto.INT:
        return int(value)
    if kind == AttributeProto.FLOATS:
        return [float(v) for v in value]
    if kind == AttributeProto.INTS:
        return [int(v) for v in value]
    return value


def _is_newest_default(op: str, key: str, value: Any) -> bool:
    """True when the attribute holds its default in the newest opset's schema."""
    attr = onnx.defs.get_schema(op, DEFAULT_OPSET).attributes.get(key)
    if attr is None or attr.default_value.type == AttributeProto.UNDEFINED:
        return False
    default = helper.get_attribute_value(attr.default_value)
    if isinstance(default, bytes):
        default = default.decode("utf-8")
    return default == _coerce(value, int(attr.type))


def _value_info(name: str, t: ValueType | None) -> ValueInfoProto:
    if t is None:
        return helper.make_empty_tensor_value_info(name)
    return helper.make_value_info(name, type_proto(t))


def type_proto(t: ValueType | None) -> TypeProto:
    """The ONNX TypeProto of an IR type (an unknown type is a tensor of undefined type)."""
    if isinstance(t, SequenceType):
        return helper.make_sequence_type_proto(type_proto(t.elem))
    if isinstance(t, OptionalType):
        return helper.make_optional_type_proto(type_proto(t.elem))
    if t is None:
        return helper.make_tensor_type_proto(onnx.TensorProto.UNDEFINED, None)
    shape = None if t.shape is None else list(t.shape)
    return helper.make_tensor_type_proto(dt.onnx_code(t.dtype), shape)
