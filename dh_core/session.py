"""Session: load a model, plan it over backends, and run it."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from . import backends as backend_registry
from . import dtypes as dt
from .backend import Device
from .dtypes import name_of
from .errors import DeviceError, DHError, InputError
from .ir import Graph, OptionalType, SequenceType, TensorType, Value, node_reads
from .partition import FALLBACKS, Plan, assign, copies_for, memory_space, split
from .passes import eliminate_dead_code, fold_constants, infer_types


def load_graph(model: Any) -> Graph:
    """A Graph from a Graph, an onnx.ModelProto, or a path to an .onnx file."""
    if isinstance(model, Graph):
        return model.copy()
    if isinstance(model, (str, os.PathLike)) or hasattr(model, "graph"):
        from .onnx_io import import_model

        return import_model(model)
    raise DHError(f"cannot load a model from {type(model).__name__}: give a Graph, a ModelProto or a path")


class Session:
    """Runs a model on an ordered list of backends.

        sess = Session("model.onnx", backends=["opencl", "cpu"], fallback="warn")
        print(sess.plan)
        y, = sess.run({"input": x})

    ``backends`` are names (optionally with a device, ``"opencl:1"``) or backend
    objects; nodes go to the first that supports them. Nodes none supports run on the
    CPU backend under ``fallback``: "allow" silently, "warn" with a warning, "error"
    raises UnsupportedOpError.
    """

    def __init__(self, model: Any, backends: Sequence[Any] = ("cpu",), fallback: str = "warn"):
        if fallback not in FALLBACKS:
            raise DHError(f"fallback must be one of {', '.join(FALLBACKS)}, not '{fallback}'")
        graph = load_graph(model)
        graph.verify()
        infer_types(graph)
        fold_constants(graph)
        eliminate_dead_code(graph)
        self.graph = graph
        chosen, self._devices = self._resolve_backends(backends)
        cpu = self._cpu()
        placed, fallbacks = assign(graph, chosen, cpu, fallback)
        partitions = split(graph, placed, cpu)
        self.plan = Plan(partitions, copies_for(graph, partitions), fallbacks)
        self._build_program()

    # -- set-up ------------------------------------------------------------------
    def _resolve_backends(self, requested: Sequence[Any]):
        if isinstance(requested, str):
            requested = [b for b in requested.split(",") if b]
        chosen, devices = [], {}
        for item in requested:
            if isinstance(item, (str, Device)):
                device = Device.parse(item)
                backend = backend_registry.get(device.backend)
            else:
                backend = item
                device = None
            reason = backend.available()
            if reason is not True:
                raise DeviceError(f"backend '{backend.name}' is not available: {reason}")
            devices[id(backend)] = device or backend.devices()[0]
            chosen.append(backend)
        return chosen, devices

    def _cpu(self):
        try:
            cpu = backend_registry.get("cpu")
        except DHError:
            return None
        self._devices.setdefault(id(cpu), cpu.devices()[0])
        return cpu

    def _build_program(self) -> None:
        graph = self.graph
        slots: dict[tuple[str, str], int] = {}

        def slot(name: str, space: str) -> int:
            return slots.setdefault((name, space), len(slots))

        self._input_slots = {v.name: slot(v.name, "host") for v in graph.inputs}
        copies_by_part: dict[int, list] = {}
        for c in self.plan.copies:
            copies_by_part.setdefault(c.before, []).append(c)
        steps = []
        backend_by_space = {memory_space(p.backend): p.backend for p in self.plan.partitions}
        for i, part in enumerate(self.plan.partitions):
            for c in copies_by_part.get(i, []):
                steps.append((self._copier(backend_by_space.get(c.source), part.backend),
                              [slot(c.value, c.source)], [slot(c.value, c.target)]))
            space = memory_space(part.backend)
            sub = self._subgraph(part)
            exe = part.backend.compile(sub, self._devices[id(part.backend)])
            steps.append((exe.run, [slot(n, space) for n in part.inputs], [slot(n, space) for n in part.outputs]))
        for c in copies_by_part.get(len(self.plan.partitions), []):
            steps.append((self._copier(backend_by_space.get(c.source), None), [slot(c.value, c.source)],
                          [slot(c.value, "host")]))
        self._output_slots = []
        for v in graph.outputs:
            if v.name in graph.initializers:
                self._output_slots.append(graph.initializers[v.name])
            else:
                self._output_slots.append(slot(v.name, "host"))
        keep = {s for s in self._output_slots if isinstance(s, int)}
        last_use: dict[int, int] = {}
        for i, (_, ins, _) in enumerate(steps):
            for s in ins:
                last_use[s] = i
        self._steps = [(fn, ins, outs, tuple(s for s in ins if last_use[s] == i and s not in keep))
                       for i, (fn, ins, outs) in enumerate(steps)]
        self._n_slots = len(slots)

    def _copier(self, source, target):
        """A step moving one buffer from ``source``'s memory to ``target``'s (None: host)."""
        device = self._devices.get(id(target)) if target is not None else None

        def copy(buffers):
            host = source.to_host(buffers[0]) if source is not None else buffers[0]
            return [target.to_device(host, device) if target is not None else host]

        return copy

    def _subgraph(self, part) -> Graph:
        graph = self.graph
        used = {n for node in part.nodes for n in node_reads(node) if n in graph.initializers}
        types = graph.value_types
        return Graph(part.nodes, [Value(n, types.get(n)) for n in part.inputs],
                     [Value(n, types.get(n)) for n in part.outputs],
                     {k: graph.initializers[k] for k in used}, f"{graph.name}.p", graph.opset, types)

    # -- running -----------------------------------------------------------------
    def get_inputs(self) -> list[Value]:
        return [Value(v.name, self.graph.value_types.get(v.name, v.type)) for v in self.graph.inputs]

    def get_outputs(self) -> list[Value]:
        return [Value(v.name, self.graph.value_types.get(v.name, v.type)) for v in self.graph.outputs]

    def run(self, output_names_or_feeds: Any, feeds: Mapping[str, Any] | None = None) -> list[Any]:
        """Run the model: ``run(feeds)`` or, as in onnxruntime, ``run(output_names, feeds)``.

        Returns the outputs as numpy arrays, in the model's output order (or the order
        of ``output_names`` when given). As in onnxruntime, a sequence is a list of
        arrays and an absent optional is None, in inputs and outputs alike."""
        if feeds is None:
            names, feeds = None, output_names_or_feeds
        else:
            names = output_names_or_feeds
        regs: list[Any] = [None] * self._n_slots
        for name, slot in self._input_slots.items():
            regs[slot] = self._checked_input(name, feeds)
        unknown = set(feeds) - set(self._input_slots)
        if unknown:
            raise InputError(f"unknown input '{sorted(unknown)[0]}'; the model's inputs are "
                             f"{', '.join(self._input_slots)}")
        for fn, ins, outs, free in self._steps:
            results = fn([regs[s] for s in ins])
            for s, r in zip(outs, results):
                regs[s] = r
            for s in free:
                regs[s] = None
        values = [regs[s] if isinstance(s, int) else s for s in self._output_slots]
        if names is None:
            return values
        by_name = dict(zip(self.graph.output_names, values))
        missing = [n for n in names if n not in by_name]
        if missing:
            raise InputError(f"unknown output '{missing[0]}'; the model's outputs are "
                             f"{', '.join(self.graph.output_names)}")
        return [by_name[n] for n in names]

    def _checked_input(self, name: str, feeds: Mapping[str, Any]) -> Any:
        if name not in feeds:
            raise InputError(f"missing input '{name}'")
        return _checked_value(name, feeds[name], self.graph.value_types.get(name))


def _checked_value(name: str, value: Any, expected: Any) -> Any:
    """A fed value as the run-time value of its declared type: an array for a tensor, a
    list of arrays for a sequence, None or the value for an optional."""
    if isinstance(expected, OptionalType):
        return None if value is None else _checked_value(name, value, expected.elem)
    if isinstance(expected, SequenceType) or (expected is None and _is_sequence(value)):
        if not isinstance(value, (list, tuple)):
            raise InputError(f"input '{name}' is a sequence: give a list of arrays, not {type(value).__name__}")
        elem = expected.elem if expected is not None else None
        return [_checked_value(f"{name}[{i}]", x, elem) for i, x in enumerate(value)]
    if value is None:
        if expected is None:
            return None
        raise InputError(f"input '{name}' is None; the model expects a tensor")
    return _checked_array(name, value, expected)


def _is_sequence(value: Any) -> bool:
    """True for a list of arrays (a sequence), False for nested numbers (one tensor)."""
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(x, np.ndarray) for x in value)


def _checked_array(name: str, value: Any, expected: TensorType | None) -> np.ndarray:
    arr = dt.as_ir_array(value)
    if expected is None:
        return arr
    if name_of(arr.dtype) != expected.dtype:
        raise InputError(f"input '{name}' has dtype {name_of(arr.dtype)}; the model expects {expected.dtype}")
    if expected.shape is not None:
        if arr.ndim != len(expected.shape):
            raise InputError(f"input '{name}' has shape {list(arr.shape)}; the model expects rank "
                             f"{len(expected.shape)} {_shape_text(expected.shape)}")
        for axis, (got, want) in enumerate(zip(arr.shape, expected.shape)):
            if isinstance(want, int) and got != want:
                raise InputError(f"input '{name}' has shape {list(arr.shape)}; the model expects "
                                 f"{_shape_text(expected.shape)} (axis {axis} must be {want})")
    return arr


def _shape_text(shape) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"
