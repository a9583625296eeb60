"""dh as an ONNX backend (``onnx.backend.base``): ``prepare``, ``run_model``, ``run_node``.

The module itself is the backend, as onnx's test runner expects:

    import onnx.backend.test
    import dh_core.onnx_io.backend as dh_backend
    globals().update(onnx.backend.test.BackendTest(dh_backend, __name__).test_cases)

A device is a dh backend name with an optional index (``cpu``, ``opencl:1``, ``cupy``,
``pynq``); the runner's ``"CPU"`` means dh's ``cpu`` backend. ``prepare`` builds a
:class:`dh_core.Session` on that backend. Nodes it cannot run raise
:class:`dh_core.errors.UnsupportedOpError` unless ``fallback="allow"`` or ``"warn"``
is passed, which runs them on the CPU backend instead.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import NodeProto, helper
from onnx.backend.base import Backend, BackendRep, namedtupledict

from dh_core import backends as backend_registry
from dh_core.backend import Device
from dh_core.errors import DHError, InputError
from dh_core.ir import DEFAULT_OPSET, DOMAIN_OPSETS
from dh_core.session import Session

RUNNER_DEVICES = {"CPU": "cpu"}
"""The device names of onnx's runner, mapped to dh backends (CUDA is not mapped:
the runner's CUDA cases need a device the runner itself can name, and dh calls it cupy)."""


def dh_device(device: str | Device) -> Device:
    """The dh device a backend-API device string names (``"CPU"`` -> ``cpu``)."""
    if isinstance(device, str):
        device = RUNNER_DEVICES.get(device, device)
    return Device.parse(device)


class DHBackendRep(BackendRep):
    """A prepared model: ``run(inputs)`` returns the outputs in the model's order."""

    def __init__(self, session: Session, declared_inputs: Sequence[str]):
        self.session = session
        self.input_names = [v.name for v in session.get_inputs()]
        self.output_names = [v.name for v in session.get_outputs()]
        self.declared_inputs = list(declared_inputs)

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Outputs for ``inputs``: a dict by name, a list in input order, or one array."""
        feeds = self._feeds(inputs)
        outputs = self.session.run(feeds)
        return namedtupledict("Outputs", self.output_names)(*outputs)

    def _feeds(self, inputs: Any) -> dict[str, Any]:
        if isinstance(inputs, Mapping):
            return {k: v for k, v in inputs.items() if k in self.input_names}
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        inputs = list(inputs)
        if len(inputs) == len(self.input_names):
            return dict(zip(self.input_names, inputs))
        if len(inputs) == len(self.declared_inputs):
            # the model lists its initializers among its inputs (IR < 4): values fed
            # for them are ignored, the initializers are what the model was made with
            wanted = set(self.input_names)
            return {k: v for k, v in zip(self.declared_inputs, inputs) if k in wanted}
        raise InputError(f"{len(inputs)} inputs given; the model takes {len(self.input_names)} "
                         f"({', '.join(self.input_names)})")


class DHBackend(Backend):
    """The onnx.backend.base.Backend of dh; the module-level functions call it."""

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return True

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> DHBackendRep:
        """A Session on the backend that ``device`` names. ``fallback`` (default
        "error") says what happens to nodes that backend cannot run."""
        fallback = kwargs.get("fallback", "error")
        session = Session(model, backends=[dh_device(device)], fallback=fallback)
        return DHBackendRep(session, [v.name for v in model.graph.input])

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any):
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(cls, node: NodeProto, inputs: Any, device: str = "CPU",
                 outputs_info: Sequence[tuple[Any, Any]] | None = None, **kwargs: Any):
        """Run one node on ``inputs`` (a list in the node's input order, or a dict)."""
        arrays = _node_inputs(node, inputs)
        graph_inputs = [helper.make_tensor_value_info(name, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
                        for name, a in arrays.items()]
        graph_outputs = [helper.make_empty_tensor_value_info(name) for name in node.output if name]
        graph = helper.make_graph([node], f"{node.op_type}_node", graph_inputs, graph_outputs)
        opset = kwargs.get("opset_version", DEFAULT_OPSET)
        domain = node.domain or ""
        opsets = [helper.make_opsetid("", opset)]
        if domain not in ("", "ai.onnx"):
            opsets.append(helper.make_opsetid(domain, DOMAIN_OPSETS.get(domain, 1)))
        model = helper.make_model(graph, opset_imports=opsets)
        return cls.prepare(model, device, **kwargs).run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        """True when ``device`` names an installed backend that is available here."""
        try:
            dev = dh_device(device)
            backend = backend_registry.get(dev.backend)
            if backend.available() is not True:
                return False
            return dev.index == 0 or any(d.spec == dev.spec for d in backend.devices())
        except DHError:
            return False


def _node_inputs(node: NodeProto, inputs: Any) -> dict[str, np.ndarray]:
    if isinstance(inputs, Mapping):
        return {k: np.asarray(v) for k, v in inputs.items()}
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    names = [n for n in node.input]
    if len(inputs) > len(names):
        raise InputError(f"{len(inputs)} inputs given; node {node.op_type} has {len(names)}")
    return {name: np.asarray(x) for name, x in zip(names, inputs) if name}


is_compatible = DHBackend.is_compatible
prepare = DHBackend.prepare
run_model = DHBackend.run_model
run_node = DHBackend.run_node
supports_device = DHBackend.supports_device
