"""ONNX out: write a dh Graph as an ``onnx.ModelProto``.

Nodes are in the IR's canonical form; exporting to an older opset moves inputs back
into attributes where the older opset had them (the axes of Reduce* before opset 18)
and drops attributes the older opset lacks when they hold their default. Anything
else an older opset cannot express raises :class:`GraphError` naming the node.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, NodeProto, ValueInfoProto, helper, numpy_helper

from dh_core import __version__
from dh_core import dtypes as dt
from dh_core.errors import GraphError
from dh_core.ir import DEFAULT_OPSET, DOMAIN_OPSETS, Graph, Node, TensorType, node_reads

from .importer import REDUCE_AXES_INPUT_SINCE, REDUCE_AXES_MOVED

MIN_OPSET = 13
"""The oldest opset the exporter writes (older ones need more attribute moves than it makes)."""


def export_model(graph: Graph, opset: int | None = None) -> onnx.ModelProto:
    """The graph as an ONNX model at ``opset`` (default: the graph's own opset, at least
    the oldest one the exporter writes)."""
    target = max(MIN_OPSET, min(graph.opset, DEFAULT_OPSET)) if opset is None else opset
    if not MIN_OPSET <= target <= DEFAULT_OPSET:
        raise GraphError(f"cannot export to opset {target}: dh exports opset {MIN_OPSET} to {DEFAULT_OPSET}")
    exporter = _Exporter(target)
    proto = exporter.graph(graph, [])
    opsets = [helper.make_opsetid("", target)]
    opsets += [helper.make_opsetid(domain, DOMAIN_OPSETS.get(domain, 1)) for domain in sorted(exporter.domains)]
    model = helper.make_model(proto, opset_imports=opsets, producer_name="dh", producer_version=__version__)
    model.ir_version = helper.find_min_ir_version_for(opsets, ignore_unknown=True)
    return model


class _Exporter:
    def __init__(self, opset: int):
        self.opset = opset
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
        if node.domain or node.op not in REDUCE_AXES_MOVED or self.opset >= REDUCE_AXES_INPUT_SINCE:
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

    def node(self, node: Node, scopes: list[dict[str, np.ndarray]]) -> NodeProto:
        schema = None
        if node.domain:
            self.domains.add(node.domain)
        else:
            try:
                schema = onnx.defs.get_schema(node.op, self.opset)
            except onnx.defs.SchemaError:
                raise GraphError(f"op {node.op} does not exist at opset {self.opset}", node.name) from None
        proto = helper.make_node(node.op, node.inputs, node.outputs, name=node.name or None,
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
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], Graph):
            return helper.make_attribute(key, [self.graph(g, scopes) for g in value])
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
            return helper.make_attribute(key, [numpy_helper.from_array(t) for t in value])
        return helper.make_attribute(key, _coerce(value, kind), attr_type=kind)


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


def _value_info(name: str, t: TensorType | None) -> ValueInfoProto:
    if t is None:
        return helper.make_empty_tensor_value_info(name)
    shape = None if t.shape is None else list(t.shape)
    return helper.make_tensor_value_info(name, dt.onnx_code(t.dtype), shape)
