"""The OpenCL backend: device arrays are pyopencl arrays; each node is one or a few
kernel launches, and nothing returns to the host inside a partition (except the
small ``axes`` input of a reduction, read when it is given)."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from dh_core.ops import registry

from dh_core.backend import Device, KernelBackend, Program, host_free
from dh_core.ir import Graph, Node, TensorType, type_key

from .elementwise import OPS, elementwise_factory
from .kernels import gemm_factory, matmul_factory, reduce_factory, softmax_factory

Check = Callable[[Node, list[TensorType]], bool]


def _rank(t: TensorType) -> int | None:
    return None if t.shape is None else len(t.shape)


def _elementwise_check(op: str) -> Check:
    spec = OPS[op]

    def check(node, types):
        if len(types) != spec.arity:
            return False
        keys = [type_key(t) for t in types]
        if spec.bool_cond:
            cond, keys = keys[0], keys[1:]
            if cond != "bool":
                return False
        return len(set(keys)) == 1 and keys[0] in spec.dtypes and keys[0] in _allowed(op, node)

    return check


def _allowed(op: str, node: Node) -> tuple[str, ...]:
    opdef = registry.get(op, node.domain)
    data = next(p for p in opdef.inputs if p.name not in ("condition",))
    return opdef.dtypes(data.type)


def _matmul_check(node, types):
    return len(types) == 2 and all(type_key(t) == "float32" and _rank(t) == 2 for t in types)


def _gemm_check(node, types):
    a, b, *c = types
    return (_matmul_check(node, [a, b]) and len(c) <= 1
            and all(type_key(t) == "float32" and _rank(t) is not None and _rank(t) <= 2 for t in c))


def _reduce_check(node, types):
    data, *axes = types
    return (type_key(data) == "float32" and _rank(data) is not None
            and all(type_key(t) == "int64" for t in axes))


def _softmax_check(node, types):
    return len(types) == 1 and type_key(types[0]) == "float32" and (_rank(types[0]) or 0) >= 1


CHECKS: dict[str, Check] = {op: _elementwise_check(op) for op in OPS}
CHECKS.update({"MatMul": _matmul_check, "Gemm": _gemm_check, "ReduceSum": _reduce_check,
               "ReduceMean": _reduce_check, "ReduceMax": _reduce_check, "Softmax": _softmax_check})


class OpenCLBackend(KernelBackend):
    """OpenCL C kernels on ``opencl:N``, the Nth device over every platform."""

    name = "opencl"

    def __init__(self) -> None:
        self._runtimes: dict[int, Any] = {}

    def available(self) -> bool | str:
        try:
            import pyopencl as cl

            from .runtime import all_devices
        except ImportError as exc:
            return f"pyopencl is not installed ({exc})"
        try:
            found = all_devices()
        except cl.Error as exc:  # the ICD loader reports a missing platform as an error
            return f"no OpenCL platform: {exc}"
        return True if found else "no OpenCL platform with a device"

    def devices(self) -> list[Device]:
        from .runtime import all_devices

        return [Device(f"opencl:{i}") for i in range(len(all_devices()))]

    def describe(self) -> list[str]:
        """``opencl:N (platform, device)`` for each device."""
        from .runtime import all_devices

        return [f"opencl:{i} ({p.name.strip()}, {d.name.strip()})" for i, (p, d) in enumerate(all_devices())]

    def runtime(self, device: Device | str | None = None):
        """The context and queue of a device (``opencl:0`` by default), opened once."""
        from .runtime import Runtime

        index = Device.parse(device).index if device is not None else 0
        if index not in self._runtimes:
            self._runtimes[index] = Runtime.open(index)
        return self._runtimes[index]

    def supports(self, node: Node, types: Sequence[TensorType | None]) -> bool:
        """Exact: the op, its arity, dtypes and ranks are all ones a kernel here handles."""
        if node.domain or node.op not in CHECKS or not host_free(node, types):
            return False
        present = [t for t in types if t is not None]
        if len(present) != len(node.inputs) - node.inputs.count(""):
            return False
        return CHECKS[node.op](node, present)

    def to_device(self, array: np.ndarray, device: Device) -> Any:
        return self.runtime(device).upload(np.asarray(array))

    def to_host(self, buffer: Any) -> np.ndarray:
        return buffer.get()

    def compile(self, subgraph: Graph, device: Device) -> Program:
        rt = self.runtime(device)
        return Program.build(subgraph, lambda node, types: _factory(rt, node, types),
                             lambda arr: self.to_device(arr, device))


def _factory(rt, node: Node, types: Sequence[TensorType | None]):
    if node.op in OPS:
        dtype = type_key(types[-1])
        return elementwise_factory(rt, node.op, dtype)
    attrs = registry.get(node.op, node.domain).full_attrs(node)
    if node.op == "MatMul":
        return matmul_factory(rt)
    if node.op == "Gemm":
        return gemm_factory(rt, attrs)
    if node.op == "Softmax":
        return softmax_factory(rt, attrs["axis"])
    return reduce_factory(rt, node.op, attrs)
