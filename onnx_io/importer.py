"""ONNX in: read a model file or ModelProto into a dh Graph in the IR's canonical form.

The importer keeps the model's opset in ``Graph.opset`` (for information and for
export) but writes every node in the canonical form, that of the newest opset: it
imports opset 6 and later (and older models whose ops are unchanged since opset 6),
rewriting what changed since (:mod:`dh_core.onnx_io.normalize`: attributes that
became inputs, renamed ops, semantic changes). Constant nodes become initializers.
Every failure to read or convert raises :class:`ModelLoadError` with one line that
names the file and the problem.
"""
from __future__ import annotations

import mmap
import os
from collections.abc import Iterator
from typing import Any, Union

import numpy as np
import onnx
from onnx import AttributeProto, GraphProto, NodeProto, TensorProto, TypeProto, ValueInfoProto, numpy_helper

from dh_core import dtypes as dt
from dh_core.errors import GraphError, ModelLoadError
from dh_core.ir import (DEFAULT_OPSET, DOMAIN_OPSETS, Dim, Graph, Node, OptionalType, SequenceType, TensorType,
                        Value, ValueType, implicit_inputs, node_reads)
from dh_core.ops.gradient import DOMAIN as GRADIENT_DOMAIN
from dh_core.ops.gradient_body import gradient_body

from . import normalize

MIN_OPSET = 6
"""The oldest opset the importer converts."""

REDUCE_AXES_INPUT_SINCE = 18
REDUCE_AXES_MOVED = frozenset(op for op, since in normalize.REDUCE_AXES_INPUT_SINCE.items() if since == 18)
"""Reductions whose ``axes`` attribute became an input in opset 18 (ReduceSum moved in 13)."""

DOMAIN_COMPATIBLE = {("ai.onnx.ml", "LabelEncoder"): (2,)}
"""Older versions of domain ops whose nodes the canonical form reads as they are
(LabelEncoder 4 only added attributes to 2)."""

ModelSource = Union[str, "os.PathLike[str]", onnx.ModelProto]


SHAPE_ONLY_ABOVE = 4096
"""Without ``load_data``, tensors of more elements than this are not converted."""


def import_model(model: ModelSource, load_data: bool = True) -> Graph:
    """A Graph from a path to an ONNX file (external data is read from beside it) or
    from an ``onnx.ModelProto``.

    With ``load_data=False`` (to describe a model, not to run it) the initializers and
    constants of more than 4096 elements, and all external ones, are read-only
    zero-strided stand-ins of the right dtype and shape: their data is neither
    converted nor read (the external files must still exist)."""
    label, proto, base_dir = _read(model)
    try:
        opset = _default_opset(proto)
        _check_domain_opsets(proto)
        if proto.functions:
            proto = _inline_functions(proto)
        return _Importer(proto.graph, opset, base_dir, load_data).graph(proto.graph)
    except ModelLoadError as exc:
        raise ModelLoadError(f"cannot load model {label}: {exc}") from None


# -- reading -----------------------------------------------------------------------
def _read(model: ModelSource) -> tuple[str, onnx.ModelProto, str]:
    """(label for messages, the ModelProto, directory of external data)."""
    if isinstance(model, onnx.ModelProto):
        label = f"'{model.graph.name}'" if model.graph.name else "(ModelProto)"
        _check_proto(model, label)
        return label, model, ""
    if not isinstance(model, (str, os.PathLike)):
        raise ModelLoadError(f"cannot load a model from {type(model).__name__}: give a path or a ModelProto")
    path = os.fspath(model)
    label = f"'{path}'"
    if not os.path.exists(path):
        raise ModelLoadError(f"cannot load model {label}: no such file")
    if os.path.isdir(path):
        raise ModelLoadError(f"cannot load model {label}: it is a directory")
    try:
        proto = _parse_file(path)
    except Exception as exc:  # protobuf and onnx raise many types; the user needs one line
        raise ModelLoadError(f"cannot load model {label}: not a readable ONNX file ({_one_line(exc)})") from None
    _check_proto(proto, label)
    return label, proto, os.path.dirname(os.path.abspath(path))


def _parse_file(path: str) -> onnx.ModelProto:
    """The model in ``path``, parsed from a memory map (no copy of the file in memory);
    external data stays where it is until a tensor is converted."""
    proto = onnx.ModelProto()
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped, memoryview(mapped) as view:
                proto.ParseFromString(view)
    return proto


def _check_proto(proto: onnx.ModelProto, label: str) -> None:
    if proto.ir_version <= 0 or not proto.HasField("graph"):
        raise ModelLoadError(f"cannot load model {label}: not an ONNX model (no IR version or no graph)")


def _default_opset(proto: onnx.ModelProto) -> int:
    versions = [o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")]
    if not versions:
        if any(n.domain in ("", "ai.onnx") for n in proto.graph.node):
            raise ModelLoadError("the model declares no opset for the default domain (ai.onnx)")
        return DEFAULT_OPSET
    opset = versions[0]
    if opset < 1:
        raise ModelLoadError(f"the model's opset version {opset} for the default domain is not valid")
    if opset < MIN_OPSET and not _unchanged_since(proto.graph, opset, MIN_OPSET):
        raise ModelLoadError(
            f"opset {opset} is not supported yet (dh imports opset {MIN_OPSET} to {DEFAULT_OPSET}); "
            f"convert it first with onnx.version_converter.convert_version(model, {MIN_OPSET})")
    if opset > DEFAULT_OPSET:
        raise ModelLoadError(f"opset {opset} is newer than the newest this dh knows ({DEFAULT_OPSET})")
    return opset


def _check_domain_opsets(proto: onnx.ModelProto) -> None:
    """Check the opsets of the other domains dh has ops in (``DOMAIN_OPSETS``): not newer
    than dh knows, and every op of the domain in the canonical form of that opset (or in a
    form the canonical one reads unchanged, ``DOMAIN_COMPATIBLE``)."""
    declared = {o.domain: o.version for o in proto.opset_import}
    for domain, newest in DOMAIN_OPSETS.items():
        version = declared.get(domain)
        if version is None:
            continue
        if version > newest:
            raise ModelLoadError(f"opset {version} of domain {domain} is newer than the newest this dh knows "
                                 f"({newest})")
        for n in (n for g in _graphs(proto.graph) for n in g.node if n.domain == domain):
            try:
                since = onnx.defs.get_schema(n.op_type, version, domain).since_version
            except onnx.defs.SchemaError:
                raise ModelLoadError(f"op {n.op_type} does not exist in opset {version} of domain {domain}") from None
            canonical = onnx.defs.get_schema(n.op_type, newest, domain).since_version
            if since != canonical and since not in DOMAIN_COMPATIBLE.get((domain, n.op_type), ()):
                raise ModelLoadError(f"op {domain}.{n.op_type} of opset {version} is not supported "
                                     f"(dh reads its form of opset {canonical})")


def _unchanged_since(gp: GraphProto, old: int, new: int) -> bool:
    """True when every default-domain op of the graph has the same schema at opset
    ``old`` as at ``new`` (a model older than the importer knows, but only in name)."""
    for n in (n for g in _graphs(gp) for n in g.node if n.domain in ("", "ai.onnx")):
        try:
            if onnx.defs.get_schema(n.op_type, old).since_version != onnx.defs.get_schema(n.op_type, new).since_version:
                return False
        except onnx.defs.SchemaError:
            return False
    return True


def _inline_functions(proto: onnx.ModelProto) -> onnx.ModelProto:
    import onnx.inliner

    try:
        return onnx.inliner.inline_local_functions(proto)
    except Exception as exc:  # the C++ inliner raises assorted types
        raise ModelLoadError(f"cannot inline the model's local functions ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


# -- conversion --------------------------------------------------------------------
class _Importer:
    """Converts one model's graphs; names stay unique across the graph and its subgraphs."""

    def __init__(self, main: GraphProto, opset: int, base_dir: str, load_data: bool = True):
        self.opset = opset
        self.base_dir = base_dir
        self.load_data = load_data
        self.values: set[str] = set()
        self.explicit_names: set[str] = set()
        for gp in _graphs(main):
            _check_text(gp)
            self.values.update(t.name for t in gp.initializer)
            self.values.update(v.name for v in gp.input)
            for n in gp.node:
                self.values.update(n.input)
                self.values.update(n.output)
                if n.name:
                    self.explicit_names.add(n.name)
        self.node_names: set[str] = set()

    def graph(self, gp: GraphProto) -> Graph:
        if gp.sparse_initializer:
            raise ModelLoadError(f"graph '{gp.name}' has sparse initializers, which dh does not support")
        inits = {t.name: self.tensor(t, "initializer") for t in gp.initializer}
        declared = {}
        for vi in (*gp.input, *gp.value_info, *gp.output):
            t = self.value_type(vi, required_tensor=False)
            if isinstance(t, TensorType):
                declared[vi.name] = t.dtype
        emit = _Emitter(self, inits, declared)
        nodes: list[Node] = []
        for index, n in enumerate(gp.node):
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                self.check_signature(n, n.name or f"Constant_{index}")
                inits[n.output[0]] = self.constant(n)
            else:
                nodes.extend(self.node(n, index, emit))
        types: dict[str, TensorType] = {}
        for vi in gp.value_info:
            t = self.value_type(vi, required_tensor=False)
            if t is not None:
                types[vi.name] = t
        inputs = [Value(v.name, self.value_type(v)) for v in gp.input if v.name not in inits]
        outputs = [Value(v.name, self.value_type(v)) for v in gp.output]
        if any(n.op == "Gradient" and n.domain == GRADIENT_DOMAIN for n in nodes):
            self.attach_gradient_bodies(nodes, inputs, outputs, inits, types)
        return Graph(nodes, inputs, outputs, inits, gp.name or "graph", self.opset, types)

    def attach_gradient_bodies(self, nodes: list[Node], inputs: list[Value], outputs: list[Value],
                               inits: dict[str, np.ndarray], types: dict[str, ValueType]) -> None:
        """Give each Gradient node the forward slice it differentiates as its ``body``;
        it must come after the nodes that compute what it names."""
        produced = {o for n in nodes for o in n.outputs if o}
        outer = {name for n in nodes for name in [*n.inputs, *implicit_inputs(n)] if name and name not in produced}
        defined = outer | set(inits) | {v.name for v in inputs}
        known_types = {**{v.name: v.type for v in (*inputs, *outputs) if v.type is not None}, **types}
        for index, node in enumerate(nodes):
            if node.op != "Gradient" or node.domain != GRADIENT_DOMAIN:
                continue
            try:
                body = gradient_body(node, nodes, defined, known_types, self.fresh_value, self.fresh_node_name)
            except GraphError as exc:
                raise ModelLoadError(str(exc)) from None
            node.attrs["body"] = body
            later = {o for n in nodes[index + 1:] for o in n.outputs if o}
            late = [name for name in node_reads(node) if name in later]
            if late:
                raise ModelLoadError(f"node '{node.name}': Gradient comes before the node that computes "
                                     f"'{late[0]}', which it differentiates")

    def node(self, n: NodeProto, index: int, emit: _Emitter) -> list[Node]:
        """The node in canonical form: itself, or the nodes that replace an older form."""
        name = self.node_name(n, index)
        attrs = {}
        for a in n.attribute:
            attrs[a.name] = self.attribute(a, name)
        self.check_signature(n, name)
        domain = "" if n.domain == "ai.onnx" else n.domain
        node = Node(n.op_type, list(n.input), list(n.output), attrs, name, domain)
        if domain:
            return [node]
        try:
            return normalize.normalize(node, self.opset, emit)
        except (OverflowError, ValueError, TypeError) as exc:  # attribute values the old form cannot hold
            raise ModelLoadError(f"node '{name}': {n.op_type} of opset {self.opset} cannot be converted "
                                 f"({_one_line(exc)})") from None

    def check_signature(self, n: NodeProto, name: str) -> None:
        """For default-domain ops: input and output counts, required attributes and
        attribute kinds are as the op's schema at the model's opset has them (what
        normalization relies on). Ops ONNX does not know pass, for verification to report."""
        if n.domain not in ("", "ai.onnx"):
            return
        try:
            schema = onnx.defs.get_schema(n.op_type, self.opset, "")
        except onnx.defs.SchemaError:
            if onnx.defs.has(n.op_type, ""):
                later = [v for v in range(self.opset + 1, DEFAULT_OPSET + 1) if onnx.defs.has(n.op_type, v, "")]
                since = f" (it appears in opset {later[0]})" if later else ""
                raise ModelLoadError(f"node '{name}': op {n.op_type} does not exist at opset {self.opset}{since}") \
                    from None
            return
        where = f"node '{name}': {n.op_type} of opset {self.opset}"
        inputs, outputs = len(n.input), len(n.output)
        if not schema.min_input <= inputs <= schema.max_input:
            raise ModelLoadError(f"{where} takes {_count_range(schema.min_input, schema.max_input)} inputs, "
                                 f"not {inputs}")
        if not schema.min_output <= outputs <= schema.max_output:
            raise ModelLoadError(f"{where} has {_count_range(schema.min_output, schema.max_output)} outputs, "
                                 f"not {outputs}")
        given = {a.name for a in n.attribute}
        for key, attr in schema.attributes.items():
            if attr.required and key not in given:
                raise ModelLoadError(f"{where} needs its attribute '{key}'")
        for a in n.attribute:
            expected = schema.attributes.get(a.name)
            if expected is not None and a.type != expected.type:
                raise ModelLoadError(f"{where}: attribute '{a.name}' must be {_kind(int(expected.type))}, "
                                     f"not {_kind(a.type)}")

    def node_name(self, n: NodeProto, index: int) -> str:
        if n.name and n.name not in self.node_names:
            self.node_names.add(n.name)
            return n.name
        base = n.name or f"{n.op_type}_{index}"
        name, k = base, 0
        while name in self.node_names or (name != n.name and name in self.explicit_names):
            k += 1
            name = f"{base}_{k}"
        self.node_names.add(name)
        return name

    def fresh_node_name(self, base: str) -> str:
        name, k = base, 0
        while name in self.node_names or name in self.explicit_names:
            k += 1
            name = f"{base}_{k}"
        self.node_names.add(name)
        return name

    def fresh_value(self, base: str) -> str:
        name, k = base, 0
        while name in self.values:
            k += 1
            name = f"{base}_{k}"
        self.values.add(name)
        return name

    def attribute(self, a: AttributeProto, node: str) -> Any:
        kind = a.type
        if a.ref_attr_name:
            raise ModelLoadError(f"node '{node}': attribute '{a.name}' refers to a function attribute")
        if kind == AttributeProto.INT:
            return int(a.i)
        if kind == AttributeProto.FLOAT:
            return float(a.f)
        if kind == AttributeProto.STRING:
            return _text(a.s, node, a.name)
        if kind == AttributeProto.INTS:
            return [int(x) for x in a.ints]
        if kind == AttributeProto.FLOATS:
            return [float(x) for x in a.floats]
        if kind == AttributeProto.STRINGS:
            return [_text(s, node, a.name) for s in a.strings]
        if kind == AttributeProto.TENSOR:
            return self.tensor(a.t, f"node '{node}' attribute '{a.name}'")
        if kind == AttributeProto.TENSORS:
            return [self.tensor(t, f"node '{node}' attribute '{a.name}'") for t in a.tensors]
        if kind == AttributeProto.GRAPH:
            return self.graph(a.g)
        if kind == AttributeProto.GRAPHS:
            return [self.graph(g) for g in a.graphs]
        if kind == AttributeProto.TYPE_PROTO:
            return self.type_of(a.tp, f"node '{node}' attribute '{a.name}'")
        raise ModelLoadError(f"node '{node}': attribute '{a.name}' has type {_kind(kind)}, which dh does not support")

    def constant(self, n: NodeProto) -> np.ndarray:
        """The value of a Constant node."""
        label = f"Constant '{n.name or n.output[0]}'"
        if len(n.attribute) != 1:
            raise ModelLoadError(f"{label} must have exactly one value attribute")
        a = n.attribute[0]
        if a.name == "value":
            return self.tensor(a.t, label)
        if a.name == "value_float":
            return np.asarray(a.f, dtype=np.float32)
        if a.name == "value_floats":
            return np.asarray(list(a.floats), dtype=np.float32)
        if a.name == "value_int":
            return np.asarray(a.i, dtype=np.int64)
        if a.name == "value_ints":
            return np.asarray(list(a.ints), dtype=np.int64)
        if a.name == "value_string":
            return np.asarray(_text(a.s, n.name or n.output[0], a.name), dtype=object)
        if a.name == "value_strings":
            return np.asarray([_text(v, n.name or n.output[0], a.name) for v in a.strings], dtype=object)
        raise ModelLoadError(f"{label}: attribute '{a.name}' is not supported (dh has no sparse tensors)")

    def tensor(self, t: TensorProto, what: str) -> np.ndarray:
        label = f"{what} '{t.name}'" if t.name else what
        dtype = self.dtype(t.data_type, label)
        external = t.data_location == TensorProto.EXTERNAL
        if external:
            self.check_external_file(t, label)
        if not self.load_data and (external or _elements(t) > SHAPE_ONLY_ABOVE):
            return self.stand_in(t, dtype, label)
        try:
            return np.asarray(numpy_helper.to_array(t, self.base_dir))
        except Exception as exc:  # bad raw data, missing external file: onnx raises assorted types
            raise ModelLoadError(f"{label}: cannot read its data ({_one_line(exc)})") from None

    def check_external_file(self, t: TensorProto, label: str) -> None:
        location = next((e.value for e in t.external_data if e.key == "location"), "")
        if not location:
            raise ModelLoadError(f"{label}: its external data has no location")
        if not os.path.isfile(os.path.join(self.base_dir, location)):
            raise ModelLoadError(f"{label}: its external data file '{location}' does not exist")

    def stand_in(self, t: TensorProto, dtype: str, label: str) -> np.ndarray:
        """A zero-strided array of the tensor's dtype and shape, its data unread."""
        if any(d < 0 for d in t.dims):
            raise ModelLoadError(f"{label}: negative dimension in {list(t.dims)}")
        return np.broadcast_to(np.zeros((), dtype=dt.to_numpy(dtype)), tuple(t.dims))

    def dtype(self, code: int, what: str) -> str:
        try:
            return dt.from_onnx(code)
        except TypeError:
            known = TensorProto.DataType.values()
            name = TensorProto.DataType.Name(code) if code in known else f"code {code}"
            raise ModelLoadError(f"{what} has element type {name}, which dh does not support") from None

    def value_type(self, vi: ValueInfoProto, required_tensor: bool = True) -> ValueType | None:
        """The type a ValueInfoProto declares (a tensor, a sequence or an optional), or
        None when it declares none. Other kinds (maps, sparse tensors) raise, unless
        ``required_tensor`` is False (value_info entries), which ignores them."""
        try:
            return self.type_of(vi.type, f"value '{vi.name}'")
        except ModelLoadError:
            if required_tensor:
                raise
            return None

    def type_of(self, tp: TypeProto, what: str) -> ValueType | None:
        """The IR type of an ONNX TypeProto (None when it leaves the type open)."""
        kind = tp.WhichOneof("value")
        if kind is None:
            return None
        if kind == "sequence_type":
            return SequenceType(self.type_of(tp.sequence_type.elem_type, what))
        if kind == "optional_type":
            return OptionalType(self.type_of(tp.optional_type.elem_type, what))
        if kind != "tensor_type":
            kind_name = kind.replace("_type", "")
            article = "an" if kind_name[0] in "aeiou" else "a"
            raise ModelLoadError(f"{what} is {article} {kind_name}; dh supports tensors, sequences and optionals")
        tt = tp.tensor_type
        if tt.elem_type == TensorProto.UNDEFINED:
            return None
        dtype = self.dtype(tt.elem_type, what)
        if not tt.HasField("shape"):
            return TensorType(dtype)
        return TensorType(dtype, tuple(_dim(d) for d in tt.shape.dim))


class _Emitter:
    """What opset normalization may add to one graph: constants, values, nodes."""

    def __init__(self, importer: _Importer, inits: dict[str, np.ndarray], declared: dict[str, str]):
        self.importer = importer
        self.inits = inits
        self.declared = declared

    def const(self, base: str, value: np.ndarray) -> str:
        name = self.importer.fresh_value(base)
        self.inits[name] = value
        return name

    def value(self, base: str) -> str:
        return self.importer.fresh_value(base)

    def node(self, op: str, inputs: list[str], outputs: list[str], attrs: dict, base: str) -> Node:
        return Node(op, inputs, outputs, attrs, self.importer.fresh_node_name(base))

    def constant(self, name: str) -> np.ndarray | None:
        return self.inits.get(name)

    def dtype(self, name: str) -> str | None:
        if name in self.inits:
            return dt.name_of(self.inits[name].dtype)
        return self.declared.get(name)


def _check_text(gp: GraphProto) -> None:
    """Every name and op type of one graph is text (protobuf hands invalid UTF-8 over as bytes)."""
    fields = [("graph name", gp.name)]
    fields += [("initializer name", t.name) for t in gp.initializer]
    fields += [("value name", v.name) for v in (*gp.input, *gp.output, *gp.value_info)]
    for n in gp.node:
        fields += [("node name", n.name), ("op type", n.op_type), ("domain", n.domain)]
        fields += [("value name", name) for name in (*n.input, *n.output)]
        fields += [("attribute name", a.name) for a in n.attribute]
    for what, text in fields:
        if not isinstance(text, str):
            raise ModelLoadError(f"{what} {text!r} is not UTF-8 text")


def _count_range(low: int, high: int) -> str:
    if low == high:
        return str(low)
    return f"at least {low}" if high > 2**30 else f"{low} to {high}"


def _kind(kind: int) -> str:
    known = AttributeProto.AttributeType.values()
    return AttributeProto.AttributeType.Name(kind) if kind in known else f"kind {kind}"


def _elements(t: TensorProto) -> int:
    count = 1
    for d in t.dims:
        count *= d
    return count


def _dim(d: Any) -> Dim:
    which = d.WhichOneof("value")
    if which == "dim_value":
        return int(d.dim_value) if d.dim_value >= 0 else None
    if which == "dim_param" and d.dim_param:
        return d.dim_param
    return None


def _text(raw: bytes, node: str, attr: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ModelLoadError(f"node '{node}': attribute '{attr}' is not UTF-8 text") from None


def _graphs(gp: GraphProto) -> Iterator[GraphProto]:
    """A graph and every subgraph inside it."""
    yield gp
    for n in gp.node:
        for a in n.attribute:
            if a.type == AttributeProto.GRAPH:
                yield from _graphs(a.g)
            elif a.type == AttributeProto.GRAPHS:
                for g in a.graphs:
                    yield from _graphs(g)
