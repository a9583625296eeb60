"""The model tests shipped inside the onnx package (simple, pytorch-converted,
pytorch-operator, and the real models stored in ``light/``), with their inputs,
expected outputs and tolerances, read as onnx's backend test runner reads them."""
from __future__ import annotations

import glob
import json
import os
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
KINDS = ("simple", "pytorch-converted", "pytorch-operator")


@dataclass
class Case:
    """One model test: the model file, its data sets, its tolerance."""

    name: str
    model_path: str
    data_dirs: list[str]
    rtol: float = 1e-3
    atol: float = 1e-7
    light: bool = False


def _tolerance(case_dir: str) -> dict:
    path = os.path.join(case_dir, "data.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        data = json.load(f)
    return {k: data[k] for k in ("rtol", "atol") if k in data}


def collect_cases() -> list[Case]:
    """The model tests of the installed onnx package, as onnx's loader finds them."""
    cases = []
    for kind in KINDS:
        for case_dir in sorted(glob.glob(os.path.join(DATA, kind, "test_*"))):
            model = os.path.join(case_dir, "model.onnx")
            if os.path.exists(model):
                data = sorted(glob.glob(os.path.join(case_dir, "test_data_set_*")))
                cases.append(Case(f"{kind}/{os.path.basename(case_dir)}", model, data, **_tolerance(case_dir)))
    for case_dir in sorted(glob.glob(os.path.join(DATA, "real", "test_*"))):
        with open(os.path.join(case_dir, "data.json")) as f:
            url = json.load(f)["url"]
        model = os.path.join(os.path.dirname(onnx.__file__), "..", url)
        cases.append(Case(f"real/{os.path.basename(case_dir)}", os.path.normpath(model), [],
                          **_tolerance(case_dir), light=True))
    return cases



def _read_tensor(path: str) -> np.ndarray:
    tensor = onnx.TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


def data_sets(case: Case, model: onnx.ModelProto) -> list[tuple[dict[str, np.ndarray], list[np.ndarray]]]:
    """(inputs by name, expected outputs) of every data set of the case."""
    inits = {t.name for t in model.graph.initializer}
    names = [v.name for v in model.graph.input if v.name not in inits]
    if case.light:
        # onnx's runner feeds a light model arange(n)/n in the input's shape and
        # compares with the outputs shipped beside the model
        inputs = {}
        for v in model.graph.input:
            if v.name not in inits:
                shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in v.type.tensor_type.shape.dim)
                n = int(np.prod(shape))
                inputs[v.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
        prefix = os.path.splitext(case.model_path)[0]
        expected = [_read_tensor(f"{prefix}_output_{i}.pb") for i in range(len(model.graph.output))]
        return [(inputs, expected)]
    sets = []
    for data_dir in case.data_dirs:
        count = len(glob.glob(os.path.join(data_dir, "input_*.pb")))
        inputs = {names[i]: _read_tensor(os.path.join(data_dir, f"input_{i}.pb")) for i in range(count)}
        outs = len(glob.glob(os.path.join(data_dir, "output_*.pb")))
        expected = [_read_tensor(os.path.join(data_dir, f"output_{i}.pb")) for i in range(outs)]
        sets.append((inputs, expected))
    return sets
