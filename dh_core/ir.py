"""The device-neutral graph IR: tensor types, values, nodes and graphs."""
from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np

from .dtypes import ALL_TYPES, STRING, name_of
from .errors import GraphError

Dim = Union[int, str, None]
"""A dimension: a size, a symbol such as ``"N"``, or None when unknown."""

DEFAULT_OPSET = 28

DOMAIN_OPSETS = {"ai.onnx.ml": 5}
"""The opset of each other domain that the library has ops in: their canonical form."""


@dataclass(frozen=True)
class TensorType:
    """Element type and shape of a tensor; ``shape=None`` means the rank is unknown."""

    dtype: str
    shape: tuple[Dim, ...] | None = None

    def __post_init__(self):
        if self.dtype not in ALL_TYPES and self.dtype not in STRING:
            raise GraphError(f"unknown dtype '{self.dtype}'")
        if self.shape is not None and not isinstance(self.shape, tuple):
            object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        """True when every dim is a known integer."""
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def __str__(self) -> str:
        if self.shape is None:
            return f"{self.dtype}[?]"
        dims = ",".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.dtype}[{dims}]"


@dataclass(frozen=True)
class SequenceType:
    """A sequence of tensors of one element type (``elem=None``: element type unknown)."""

    elem: TensorType | None = None

    def __str__(self) -> str:
        return f"seq({self.elem if self.elem else '?'})"


@dataclass(frozen=True)
class OptionalType:
    """A value that is present (a tensor or a sequence) or absent (None at run time)."""

    elem: TensorType | SequenceType | None = None

    def __str__(self) -> str:
        return f"optional({self.elem if self.elem else '?'})"


ValueType = TensorType | SequenceType | OptionalType
"""The type of a value: a tensor, a sequence of tensors, or an optional of either."""


@dataclass
class Value:
    """A named graph input or output."""

    name: str
    type: ValueType | None = None

    def __str__(self) -> str:
        return f"%{self.name}: {self.type if self.type else '?'}"


@dataclass
class Node:
    """One op application. Missing optional inputs are the empty string ``""``.

    Attribute values are Python scalars, lists, numpy arrays (tensors) or
    :class:`Graph` objects (subgraphs of If, Loop and Scan).
    """

    op: str
    inputs: list[str]
    outputs: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)
    name: str = ""
    domain: str = ""

    def __str__(self) -> str:
        outs = ", ".join(f"%{o}" for o in self.outputs)
        ins = ", ".join(f"%{i}" if i else "_" for i in self.inputs)
        attrs = ""
        if self.attrs:
            attrs = "{" + ", ".join(f"{k}={_attr_text(v)}" for k, v in sorted(self.attrs.items())) + "}"
        op = f"{self.domain}.{self.op}" if self.domain else self.op
        label = f"  # {self.name}" if self.name else ""
        return f"{outs} = {op}{attrs}({ins}){label}"


def _attr_text(value: Any) -> str:
    if isinstance(value, Graph):
        return f"<graph {value.name}>"
    if isinstance(value, np.ndarray):
        if value.size <= 8:
            return f"tensor<{value.dtype}>{value.tolist()}"
        return f"tensor<{value.dtype}{list(value.shape)}>"
    if isinstance(value, str):
        return repr(value)
    return str(value)


class Graph:
    """Named inputs and outputs, nodes in topological order, initializers, opset.

    ``value_types`` holds the known types of every value (inputs, initializers,
    intermediates after shape inference). A subgraph may read values of the
    graphs around it; ``outer_scope`` names them for verification.
    """

    def __init__(
        self,
        nodes: Iterable[Node] = (),
        inputs: Iterable[Value] = (),
        outputs: Iterable[Value] = (),
        initializers: Mapping[str, np.ndarray] | None = None,
        name: str = "graph",
        opset: int = DEFAULT_OPSET,
        value_types: Mapping[str, TensorType] | None = None,
    ):
        self.nodes: list[Node] = list(nodes)
        self.inputs: list[Value] = list(inputs)
        self.outputs: list[Value] = list(outputs)
        self.initializers: dict[str, np.ndarray] = dict(initializers or {})
        self.name = name
        self.opset = opset
        self.value_types: dict[str, TensorType] = dict(value_types or {})
        for v in self.inputs + self.outputs:
            if v.type is not None:
                self.value_types.setdefault(v.name, v.type)
        for k, arr in self.initializers.items():
            self.value_types.setdefault(k, TensorType(name_of(arr.dtype), arr.shape))

    # -- queries -------------------------------------------------------------
    @property
    def input_names(self) -> list[str]:
        return [v.name for v in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [v.name for v in self.outputs]

    def type_of(self, name: str) -> TensorType | None:
        return self.value_types.get(name)

    def producers(self) -> dict[str, Node]:
        """Map each node output to the node that produces it."""
        return {o: n for n in self.nodes for o in n.outputs if o}

    def consumers(self) -> dict[str, list[Node]]:
        """Map each value to the nodes that read it (subgraph reads included)."""
        uses: dict[str, list[Node]] = {}
        for n in self.nodes:
            for name in node_reads(n):
                uses.setdefault(name, []).append(n)
        return uses

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))

    def walk(self) -> Iterator[Node]:
        """Every node, including those inside subgraph attributes."""
        for n in self.nodes:
            yield n
            for sub in subgraphs(n):
                yield from sub.walk()

    def copy(self) -> "Graph":
        """A copy whose node list and dicts can be changed independently."""
        g = Graph(
            [Node(n.op, list(n.inputs), list(n.outputs), dict(n.attrs), n.name, n.domain) for n in self.nodes],
            [Value(v.name, v.type) for v in self.inputs],
            [Value(v.name, v.type) for v in self.outputs],
            dict(self.initializers),
            self.name,
            self.opset,
            dict(self.value_types),
        )
        return g

    # -- checks --------------------------------------------------------------
    def verify(self, outer_scope: Iterable[str] = ()) -> None:
        """Raise :class:`GraphError` naming the first node that breaks the IR rules."""
        from dh_core.ops import registry

        defined = set(outer_scope) | set(self.input_names) | set(self.initializers)
        if len(set(self.input_names)) != len(self.inputs):
            raise GraphError(f"graph '{self.name}' has duplicate input names")
        for i, node in enumerate(self.nodes):
            label = node.name or f"#{i} {node.op}"
            opdef = registry.find(node.op, node.domain)
            if opdef is None:
                domain = f" in domain '{node.domain}'" if node.domain else ""
                raise GraphError(f"unknown op {node.op}{domain}", label)
            for name in node.inputs:
                if name and name not in defined:
                    raise GraphError(f"input '{name}' is not defined before use", label)
            opdef.check_node(node, label)
            for sub in subgraphs(node):
                sub.verify(defined)
            for out in node.outputs:
                if not out:
                    continue
                if out in defined:
                    raise GraphError(f"output '{out}' is assigned more than once", label)
                defined.add(out)
        for v in self.outputs:
            if v.name not in defined:
                raise GraphError(f"graph output '{v.name}' is never produced")

    # -- text form ------------------------------------------------------------
    def __str__(self) -> str:
        ins = ", ".join(str(Value(v.name, self.value_types.get(v.name, v.type))) for v in self.inputs)
        outs = ", ".join(str(Value(v.name, self.value_types.get(v.name, v.type))) for v in self.outputs)
        lines = [f"graph {self.name} (opset {self.opset}) ({ins}) -> ({outs}) {{"]
        for name, arr in self.initializers.items():
            lines.append(f"  %{name}: {TensorType(name_of(arr.dtype), arr.shape)} = initializer")
        for n in self.nodes:
            lines.append("  " + str(n))
            for sub in subgraphs(n):
                lines.extend("    " + line for line in str(sub).splitlines())
        lines.append("}")
        return "\n".join(lines)

    __repr__ = __str__


def subgraphs(node: Node) -> list[Graph]:
    """The Graph-valued attributes of a node (If branches, Loop/Scan bodies)."""
    out: list[Graph] = []
    for v in node.attrs.values():
        if isinstance(v, Graph):
            out.append(v)
        elif isinstance(v, (list, tuple)):
            out.extend(x for x in v if isinstance(x, Graph))
    return out


def node_reads(node: Node) -> list[str]:
    """Names a node reads: its inputs, the outer-scope names its subgraphs use and the
    values it names in attributes (:func:`named_values`)."""
    names = [i for i in node.inputs if i]
    for sub in subgraphs(node):
        names.extend(free_names(sub))
    names.extend(named_values(node))
    return names


def named_values(node: Node) -> list[str]:
    """Values of the enclosing graph that a node names in attributes instead of reading
    them as inputs (Gradient's xs, zs and y): a pass keeps them as though it read them."""
    from dh_core.ops import registry

    opdef = registry.find(node.op, node.domain)
    if opdef is None or not opdef.value_name_attrs:
        return []
    names: list[str] = []
    for key in opdef.value_name_attrs:
        value = node.attrs.get(key)
        names.extend([value] if isinstance(value, str) else value or [])
    return [n for n in names if n]


def rename_named_values(node: Node, old: str, new: str) -> None:
    """Rename ``old`` to ``new`` in the attributes where the node names values."""
    from dh_core.ops import registry

    opdef = registry.find(node.op, node.domain)
    for key in opdef.value_name_attrs if opdef is not None else ():
        value = node.attrs.get(key)
        if isinstance(value, str):
            node.attrs[key] = new if value == old else value
        elif value:
            node.attrs[key] = [new if v == old else v for v in value]


def free_names(graph: Graph) -> list[str]:
    """Names a graph reads from the scopes around it (repeats included)."""
    local = set(graph.input_names) | set(graph.initializers)
    free: list[str] = []
    for n in graph.nodes:
        free.extend(name for name in node_reads(n) if name not in local)
        local.update(o for o in n.outputs if o)
    free.extend(v.name for v in graph.outputs if v.name not in local)
    return free


def implicit_inputs(node: Node) -> list[str]:
    """Outer-scope names a node's subgraphs read (each once, in order of first use):
    values it reads besides its inputs, which passes and backends treat as inputs."""
    names: list[str] = []
    for sub in subgraphs(node):
        for name in free_names(sub):
            if name not in names:
                names.append(name)
    return names


# -- sequence and optional types ---------------------------------------------------
def type_key(t: ValueType) -> str:
    """A type without its shape as a constraint string: ``"float32"`` for a tensor,
    ``"seq(float32)"``, ``"optional(float32)"``, ``"optional(seq(float32))"``."""
    if isinstance(t, TensorType):
        return t.dtype
    if t.elem is None:
        return "seq(?)" if isinstance(t, SequenceType) else "optional(?)"
    inner = type_key(t.elem)
    return f"seq({inner})" if isinstance(t, SequenceType) else f"optional({inner})"


def type_from_key(key: str) -> ValueType:
    """The shape-less type a :func:`type_key` string names."""
    for prefix, cls in (("seq(", SequenceType), ("optional(", OptionalType)):
        if key.startswith(prefix) and key.endswith(")"):
            inner = key[len(prefix):-1]
            return cls(None if inner == "?" else type_from_key(inner))
    return TensorType(key)


def is_tensor_type(t: ValueType | None) -> bool:
    return isinstance(t, TensorType)
