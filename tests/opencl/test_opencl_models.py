"""Every model test shipped inside the onnx package, run with ``backends=["opencl",
"cpu"]``: the outputs must equal the case's expected outputs within its tolerance, and
in the real CNNs (``light/``) at least 95% of the plan's nodes must run on opencl.

The real models' expected outputs ship beside them, so they run by default (about
10 s on two cores). Skipped, with the reason, where pyopencl or an OpenCL platform
is missing.
"""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyopencl", reason="pyopencl is not installed")
pytest.importorskip("dh_backend_opencl", reason="dh-backend-opencl is not installed")

import onnx
from dh_backend_opencl.backend import OpenCLBackend

from dh_core import Session
from dh_core.errors import ModelLoadError
from tests.onnx_model_cases import collect_cases, data_sets

if OpenCLBackend().available() is not True:
    pytest.skip(f"OpenCL backend not available: {OpenCLBackend().available()}", allow_module_level=True)

MIN_DEVICE_SHARE = 0.95
"""Share of a real CNN's plan nodes that must run on the device."""


def device_share(session: Session) -> float:
    """The share of the plan's nodes that run on opencl."""
    counts = [(p.backend.name, len(p.nodes)) for p in session.plan.partitions]
    total = sum(n for _, n in counts)
    return sum(n for name, n in counts if name == "opencl") / total if total else 1.0


@pytest.mark.parametrize("case", collect_cases(), ids=lambda case: case.name)
def test_model_matches_the_expected_outputs_on_opencl_and_cpu(case):
    model = onnx.load(case.model_path)
    try:
        session = Session(case.model_path, backends=["opencl", "cpu"], fallback="allow")
    except ModelLoadError as exc:
        pytest.skip(f"dh does not import this model: {exc}")
    if case.light:
        share = device_share(session)
        assert share >= MIN_DEVICE_SHARE, f"{share:.1%} of the nodes run on opencl\n{session.plan}"
    for inputs, expected in data_sets(case, model):
        got = session.run(inputs)
        assert len(got) == len(expected)
        for out, ref in zip(got, expected):
            if isinstance(ref, np.ndarray) and ref.dtype == object:  # text: exact
                np.testing.assert_array_equal(out, ref)
                continue
            assert out.dtype == ref.dtype and out.shape == ref.shape
            np.testing.assert_allclose(out, ref, rtol=case.rtol, atol=case.atol)
