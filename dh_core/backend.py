"""The backend contract and the helper base class that turns per-op kernels into it."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .errors import DeviceError
from .ir import Graph, Node, TensorType, implicit_inputs, subgraphs, type_key


@dataclass(frozen=True)
class Device:
    """A device of a backend: ``Device("opencl:0")`` or ``Device("cpu")``."""

    spec: str

    @property
    def backend(self) -> str:
        return self.spec.split(":", 1)[0]

    @property
    def index(self) -> int:
        _, _, idx = self.spec.partition(":")
        return int(idx) if idx else 0

    def __str__(self) -> str:
        return self.spec

    @classmethod
    def parse(cls, value: "str | Device") -> "Device":
        if isinstance(value, Device):
            return value
        name, _, idx = str(value).partition(":")
        if not name or (idx and not idx.isdigit()):
            raise DeviceError(f"bad device '{value}': expected NAME or NAME:INDEX")
        return cls(f"{name}:{idx}" if idx else name)


class Executable(Protocol):
    def run(self, inputs: Sequence[Any]) -> list[Any]: ...


@runtime_checkable
class Backend(Protocol):
    """What every backend provides. Buffers are whatever the backend uses for memory."""

    name: str

    def available(self) -> "bool | str": ...
    def devices(self) -> list[Device]: ...
    def supports(self, node: Node, types: Sequence[TensorType | None]) -> bool: ...
    def compile(self, subgraph: Graph, device: Device) -> Executable: ...
    def to_device(self, array: np.ndarray, device: Device) -> Any: ...
    def to_host(self, buffer: Any) -> np.ndarray: ...


Kernel = Callable[..., Any]
KernelFactory = Callable[[Node, Sequence[TensorType | None]], Kernel]
"""Builds the kernel of one node at compile time; the kernel maps input buffers to the
output buffer (or a tuple of them for multi-output ops)."""


class KernelBackend:
    """Base class for a backend made of per-op kernels.

    Subclasses set ``name`` and ``kernels`` (op name -> KernelFactory), optionally
    ``dtypes`` (op name -> dtypes the kernel handles; default every dtype the schema
    allows), and implement ``to_device``/``to_host``/``devices``. ``compile`` lowers a
    subgraph to a flat program over a register file; a register is released after its
    last use so intermediates are freed early.
    """

    name: str = ""
    kernels: Mapping[str, KernelFactory] = {}
    dtypes: Mapping[str, Sequence[str]] = {}
    min_partition_size: int = 1

    def available(self) -> bool | str:
        return True

    def devices(self) -> list[Device]:
        return [Device(self.name)]

    def supports(self, node: Node, types: Sequence[TensorType | None]) -> bool:
        """Kernels take tensors: nodes with subgraphs (If, Loop, Scan) and sequence or
        optional values stay on the host (the CPU backend)."""
        if node.domain or node.op not in self.kernels or not host_free(node, types):
            return False
        allowed = self.dtypes.get(node.op)
        if allowed is None:
            return True
        return all(t is None or type_key(t) in allowed for t in types)

    def to_device(self, array: np.ndarray, device: Device) -> Any:
        return array

    def to_host(self, buffer: Any) -> np.ndarray:
        return np.asarray(buffer)

    def compile(self, subgraph: Graph, device: Device) -> "Program":
        return Program.build(subgraph, lambda node, types: self.kernels[node.op](node, types),
                             lambda arr: self.to_device(arr, device))


class Program:
    """A subgraph lowered to ``(kernel, input registers, output registers)`` steps.

    The kernel of a node with subgraphs (If, Loop, Scan) gets, after its inputs, the
    outer values its subgraphs read, in the order of :func:`dh_core.ir.implicit_inputs`."""

    __slots__ = ("steps", "n_registers", "input_slots", "output_slots", "constants")

    def __init__(self, steps, n_registers, input_slots, output_slots, constants):
        self.steps = steps
        self.n_registers = n_registers
        self.input_slots = input_slots
        self.output_slots = output_slots
        self.constants = constants

    @classmethod
    def build(cls, graph: Graph, make_kernel: Callable[[Node, list], Kernel],
              upload: Callable[[np.ndarray], Any]) -> "Program":
        slots: dict[str, int] = {}

        def slot(name: str) -> int:
            if name not in slots:
                slots[name] = len(slots)
            return slots[name]

        input_slots = [slot(v.name) for v in graph.inputs]
        constants = [(slot(k), upload(arr)) for k, arr in graph.initializers.items()]
        keep = {slots[k] for k in graph.initializers} | {slot(v.name) for v in graph.outputs}
        last_use: dict[int, int] = {}
        reads = [node.inputs + implicit_inputs(node) for node in graph.nodes]
        for i, names in enumerate(reads):
            for name in names:
                if name:
                    last_use[slot(name)] = i
        raw_steps = []
        for i, node in enumerate(graph.nodes):
            types = [graph.value_types.get(n) if n else None for n in node.inputs]
            kernel = make_kernel(node, types)
            ins = tuple(slot(n) if n else -1 for n in reads[i])
            outs = tuple(slot(n) if n else -1 for n in node.outputs)
            if not returns_tuple(node):
                outs = outs[0]
            free = tuple(s for s in set(ins) if s >= 0 and last_use.get(s) == i and s not in keep)
            raw_steps.append((kernel, ins, outs, free))
        output_slots = [slots[v.name] for v in graph.outputs]
        return cls(raw_steps, len(slots), input_slots, output_slots, constants)

    def run(self, inputs: Sequence[Any]) -> list[Any]:
        regs: list[Any] = [None] * self.n_registers
        for s, buf in zip(self.input_slots, inputs):
            regs[s] = buf
        for s, buf in self.constants:
            regs[s] = buf
        for kernel, ins, outs, free in self.steps:
            result = kernel(*[regs[i] if i >= 0 else None for i in ins])
            if outs.__class__ is int:
                regs[outs] = result
            else:
                for o, r in zip(outs, result):
                    if o >= 0:
                        regs[o] = r
            for f in free:
                regs[f] = None
        return [regs[s] for s in self.output_slots]


def host_free(node: Node, types: Sequence[Any]) -> bool:
    """False for nodes only the host runs: control flow, and sequence or optional values."""
    return not subgraphs(node) and all(t is None or isinstance(t, TensorType) for t in types)


def returns_tuple(node: Node) -> bool:
    """True when the node's kernel returns a tuple: ops with several (or variadic) outputs."""
    from .ops import registry

    opdef = registry.find(node.op, node.domain)
    if opdef is None:
        return len(node.outputs) > 1
    return len(opdef.outputs) > 1 or any(p.variadic for p in opdef.outputs)
