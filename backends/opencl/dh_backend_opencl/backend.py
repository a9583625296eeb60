"""The OpenCL backend: device arrays are pyopencl arrays; each node is one or a few
kernel launches, and nothing returns to the host inside a partition. Index inputs
(axes, shapes, pads) are resolved at compile time when they are initializers, come
with their host copy when the host computed them, and are read back only otherwise."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from dh_core.ops import registry

from dh_core.backend import Device, KernelBackend, Program, host_free
from dh_core.ir import Graph, Node, TensorType
from dh_core.passes import eliminate_dead_code
from dh_core.passes.batchnorm import fold_batch_norm

from . import (blocks, cast, conv, conv_transpose, elementwise, fusion, gemm, indexing, kernels, lp_pool,
               movement, normalization, pool, resize)
from .table import OpKernel

KERNELS: dict[str, OpKernel] = {}
for _module in (elementwise, gemm, kernels, conv, pool, normalization, movement, cast, conv_transpose, blocks,
                lp_pool, resize, indexing):
    KERNELS.update(_module.KERNELS)


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
        if node.domain or node.op not in KERNELS or not host_free(node, types):
            return False
        present = [t for t in types if t is not None]
        if len(present) != len(node.inputs) - node.inputs.count(""):
            return False
        return KERNELS[node.op].check(node, present)

    def to_device(self, array: np.ndarray, device: Device) -> Any:
        return self.runtime(device).upload(np.asarray(array))

    def to_host(self, buffer: Any) -> np.ndarray:
        return buffer.get()

    def compile(self, subgraph: Graph, device: Device) -> Program:
        """Inference BatchNormalizations after a Conv, Gemm or MatMul with constant
        weights are folded into those weights first (as the CPU backend does), then chains
        of elementwise nodes are fused into one kernel each (:mod:`.fusion`)."""
        rt = self.runtime(device)
        subgraph = eliminate_dead_code(fold_batch_norm(subgraph.copy()))
        if fusion.enabled():
            subgraph = fusion.fuse(subgraph, self.supports)
        consts = subgraph.initializers
        return Program.build(subgraph, lambda node, types: _factory(rt, node, types, consts),
                             lambda arr: self.to_device(arr, device))


def _factory(rt, node: Node, types: Sequence[TensorType | None], consts: dict[str, np.ndarray]):
    if node.domain == fusion.DOMAIN:
        return fusion.fused_factory(rt, node)
    attrs = registry.get(node.op, node.domain).full_attrs(node)
    kernel = KERNELS[node.op]
    if kernel.reads_constants:
        return kernel.make(rt, node, types, attrs, [consts.get(n) if n else None for n in node.inputs])
    return kernel.make(rt, node, types, attrs)
