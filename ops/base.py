"""The OpDef base class: an op's schema, type inference, numpy reference and decomposition."""
from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dh_core.errors import GraphError, ShapeError
from dh_core.ir import Node, TensorType, ValueType, type_from_key, type_key

REQUIRED = object()
"""Default of an attribute that has no default."""

ATTR_TYPES = ("int", "float", "string", "ints", "floats", "strings", "tensor", "sparse_tensor", "graph",
              "graphs", "type_proto")


@dataclass(frozen=True)
class Param:
    """An input or output of an op. ``type`` is a constraint name such as ``"T"``."""

    name: str
    type: str
    optional: bool = False
    variadic: bool = False
    min_arity: int = 1
    """How many values a variadic parameter takes at least."""
    homogeneous: bool = True
    """False when the values of a variadic parameter may differ in type (If, Loop, Scan)."""


@dataclass(frozen=True)
class Attr:
    """An attribute: its kind (one of ATTR_TYPES) and default (REQUIRED if none)."""

    kind: str
    default: Any = REQUIRED

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


class InferContext:
    """What ``OpDef.infer`` sees of a node: input types, attributes, constant inputs."""

    def __init__(self, node: Node, types: Sequence[TensorType | None], attrs: dict,
                 constants: Sequence[np.ndarray | None]):
        self.node = node
        self.types = list(types)
        self.attrs = attrs
        self._constants = list(constants)

    def shape(self, i: int):
        t = self.types[i] if i < len(self.types) else None
        return t.shape if isinstance(t, TensorType) else None

    def dtype(self, i: int) -> str | None:
        t = self.types[i] if i < len(self.types) else None
        return t.dtype if isinstance(t, TensorType) else None

    def value(self, i: int) -> np.ndarray | None:
        """The input's value when it is known before running (an initializer or folded)."""
        return self._constants[i] if i < len(self._constants) else None

    def has(self, i: int) -> bool:
        return i < len(self.node.inputs) and bool(self.node.inputs[i])


class Decomposer:
    """Emits the core-op nodes that replace one composite node.

    ``op()`` creates nodes with fresh value names; pass ``outputs=d.outputs`` on the
    last node so that it writes the composite's own outputs.
    """

    def __init__(self, node: Node, types: Sequence[TensorType | None], attrs: dict,
                 constants: Sequence[np.ndarray | None], fresh):
        self.node = node
        self.inputs = list(node.inputs)
        self.outputs = list(node.outputs)
        self.types = list(types)
        self.attrs = attrs
        self._constants = list(constants)
        self._fresh = fresh
        self.nodes: list[Node] = []
        self.initializers: dict[str, np.ndarray] = {}

    def dtype(self, i: int = 0) -> str:
        t = self.types[i] if i < len(self.types) else None
        if t is None:
            raise ShapeError(f"{self.node.op} needs the dtype of input {i} to decompose", self.node.name)
        return t.dtype

    def rank(self, i: int = 0) -> int:
        t = self.types[i] if i < len(self.types) else None
        if t is None or t.rank is None:
            raise ShapeError(f"{self.node.op} needs the rank of input {i} to decompose", self.node.name)
        return t.rank

    def value(self, i: int) -> np.ndarray | None:
        return self._constants[i] if i < len(self._constants) else None

    def fresh(self, base: str) -> str:
        """A value or node name not used anywhere in the graph (for subgraphs it builds)."""
        return self._fresh(base)

    def const(self, value, dtype: str | None = None) -> str:
        """Add a constant tensor and return its value name."""
        arr = np.asarray(value, dtype=dtype) if dtype else np.asarray(value)
        name = self._fresh(f"{self.node.name or self.node.op}_c")
        self.initializers[name] = arr
        return name

    def op(self, op: str, *inputs: str, outputs: int | Sequence[str] = 1, **attrs):
        """Emit a node; returns its output name, or a list when it has several."""
        if isinstance(outputs, int):
            outs = [self._fresh(f"{self.node.name or self.node.op}_{op}") for _ in range(outputs)]
        else:
            outs = list(outputs)
        base = self.node.name or self.node.op
        self.nodes.append(Node(op, list(inputs), outs, attrs, self._fresh(f"{base}/{op}")))
        return outs[0] if len(outs) == 1 else outs


class OpDef:
    """One op: schema, ``infer`` for output types, ``reference`` in numpy, and for
    composites ``decompose`` into core ops.

    ``reference(*inputs, **attrs)`` gets numpy arrays (None for a missing optional
    input; variadic inputs spread) and every attribute with its default filled in. It
    returns one array, or a tuple with one entry per schema output (per produced
    output for variadic outputs).
    """

    name: ClassVar[str]
    domain: ClassVar[str] = ""
    inputs: ClassVar[tuple[Param, ...]] = ()
    outputs: ClassVar[tuple[Param, ...]] = ()
    attrs: ClassVar[dict[str, Attr]] = {}
    constraints: ClassVar[dict[str, tuple[str, ...]]] = {}
    composite: ClassVar[bool] = False
    """True when the op defines ``decompose(d: Decomposer)``, expressing it in other ops."""
    reads_outer: ClassVar[bool] = False
    """True for ops with subgraphs (If, Loop, Scan, SequenceMap): their reference also
    gets ``outer``, the values of the enclosing scopes that the subgraphs read."""
    derived_attrs: ClassVar[tuple[str, ...]] = ()
    """Attributes the IR adds to ONNX's form of the op, derived from the enclosing graph
    (Gradient's ``body``): every node has them, the exporter leaves them out."""
    value_name_attrs: ClassVar[tuple[str, ...]] = ()
    """Attributes that name values of the enclosing graph (Gradient's xs, zs and y):
    passes keep, order and rename those values as if the node read them."""

    # -- schema checks ---------------------------------------------------------
    def dtypes(self, type_var: str) -> tuple[str, ...]:
        """The dtypes a constraint allows; a plain dtype name stands for itself."""
        return self.constraints.get(type_var, (type_var,))

    def full_attrs(self, node: Node) -> dict:
        """The node's attributes with schema defaults filled in."""
        out = {k: a.default for k, a in self.attrs.items() if not a.required}
        out.update(node.attrs)
        return out

    def check_node(self, node: Node, label: str) -> None:
        """Raise GraphError when the node's arity or attributes break the schema."""
        for key in node.attrs:
            if key not in self.attrs and key not in self.derived_attrs:
                raise GraphError(f"{self.name} has no attribute '{key}'", label)
        for key in self.derived_attrs:
            if key not in node.attrs:
                raise GraphError(f"{self.name} needs attribute '{key}', which the importer derives from "
                                 f"the enclosing graph", label)
        for key, attr in self.attrs.items():
            if attr.required and key not in node.attrs:
                raise GraphError(f"{self.name} needs attribute '{key}'", label)
        n_in = len(node.inputs)
        min_in = sum(1 for p in self.inputs if not p.optional and not p.variadic) + sum(
            p.min_arity for p in self.inputs if p.variadic and not p.optional)
        variadic = any(p.variadic for p in self.inputs)
        max_in = None if variadic else len(self.inputs)
        while n_in and not node.inputs[n_in - 1]:
            n_in -= 1
        if n_in < min_in or (max_in is not None and n_in > max_in):
            want = f"{min_in}" if max_in == min_in else f"{min_in} to {max_in if max_in is not None else 'any'}"
            raise GraphError(f"{self.name} takes {want} inputs, got {n_in}", label)
        for i, p in enumerate(self.inputs):
            if not p.optional and not p.variadic and (i >= len(node.inputs) or not node.inputs[i]):
                raise GraphError(f"{self.name} input '{p.name}' is missing", label)

    def input_param(self, i: int) -> Param:
        if i < len(self.inputs):
            return self.inputs[i]
        return self.inputs[-1]  # the variadic tail

    def output_param(self, i: int) -> Param:
        if i < len(self.outputs):
            return self.outputs[i]
        return self.outputs[-1]

    def check_dtypes(self, node: Node, types: Sequence[TensorType | None]) -> None:
        """Raise ShapeError when an input dtype is outside the op's constraints, or
        two inputs bound to one type variable disagree."""
        bound: dict[str, str] = {}
        for i, t in enumerate(types):
            if t is None:
                continue
            p = self.input_param(i)
            allowed = self.dtypes(p.type)
            key = type_key(t)
            if "?" in key:
                continue
            if key not in allowed:
                raise ShapeError(
                    f"{self.name} input '{p.name}' has dtype {key}; allowed: {', '.join(allowed)}",
                    node.name or node.op)
            if p.type in self.constraints and p.homogeneous:
                prev = bound.setdefault(p.type, key)
                if prev != key:
                    raise ShapeError(
                        f"{self.name} inputs bound to {p.type} disagree: {prev} and {key}",
                        node.name or node.op)

    # -- semantics ----------------------------------------------------------------
    def infer(self, ctx: InferContext) -> list[ValueType | None]:
        """Output types. The default binds dtypes through the constraints and leaves
        shapes unknown; ops override it to compute shapes."""
        return [None if d is None else type_from_key(d) for d in self.output_dtypes(ctx)]

    def output_dtypes(self, ctx: InferContext) -> list[str | None]:
        bound: dict[str, str] = {}
        for i, t in enumerate(ctx.types):
            if t is not None and "?" not in type_key(t):
                bound.setdefault(self.input_param(i).type, type_key(t))
        out = []
        for i in range(len(ctx.node.outputs)):
            p = self.output_param(i)
            if p.type in bound:
                out.append(bound[p.type])
            else:
                allowed = self.dtypes(p.type)
                out.append(allowed[0] if len(allowed) == 1 else None)
        return out

    def run_reference(self, node: Node, arrays: Sequence[Any],
                      outer: dict[str, Any] | None = None) -> list[Any]:
        """Run the reference for a node; always returns a list of values (arrays; lists
        of arrays for sequences; None for an absent optional). ``outer`` holds the
        enclosing scopes' values that the node's subgraphs read."""
        attrs = self.full_attrs(node)
        if self.reads_outer:
            attrs["outer"] = outer or {}
        result = self.reference(*arrays, **attrs)
        wrap = as_value if self.makes_values else np.asarray
        if isinstance(result, tuple):
            return [wrap(r) for r in result]
        return [wrap(result)]

    @functools.cached_property
    def makes_values(self) -> bool:
        """True when an output may be a sequence or an optional rather than a tensor."""
        return any("(" in key for p in self.outputs for key in self.dtypes(p.type))

    def __repr__(self) -> str:
        return f"<OpDef {self.domain + '.' if self.domain else ''}{self.name}>"


def as_value(result: Any) -> Any:
    """A reference result as a run-time value: an array, a list of arrays (a sequence)
    or None (an absent optional)."""
    if result is None:
        return None
    if isinstance(result, list):
        return [np.asarray(r) for r in result]
    return np.asarray(result)
