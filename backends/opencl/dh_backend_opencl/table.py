"""The shape of the OpenCL backend's kernel table: each kernel module exports
``KERNELS``, a dict from op name to an :class:`OpKernel`; ``backend.py`` merges them."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dh_core.ir import Node, TensorType

Check = Callable[[Node, list[TensorType]], bool]
"""True when the kernel handles the node with these (present) input types."""
Make = Callable[[Any, Node, Sequence[TensorType | None], dict], Callable[..., Any]]
"""``make(runtime, node, input types, full attributes)`` -> the kernel, called once at
compile time; the kernel maps device arrays to the output (a tuple for several)."""


@dataclass(frozen=True)
class OpKernel:
    check: Check
    make: Make
    reads_constants: bool = False
    """``make`` also gets, as a fifth argument, the value of each input that is an
    initializer of the subgraph (None for the others), so index inputs (axes, shapes,
    pads) are resolved at compile time."""


def rank(t: TensorType) -> int | None:
    return None if t.shape is None else len(t.shape)
