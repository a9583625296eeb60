"""The example plugin in examples/ works as the README says."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import dh_core as dh
from dh_core.partition import FallbackWarning
from dh_core.zoo import mlp

EXAMPLE = Path(__file__).parents[1] / "examples" / "dh-backend-tiny" / "dh_backend_tiny" / "__init__.py"


@pytest.fixture(scope="module")
def tiny():
    spec = importlib.util.spec_from_file_location("dh_backend_tiny_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    (backend_spec,) = module.dh_backends()
    assert backend_spec.name == "tiny"
    return backend_spec.factory()


def test_tiny_runs_its_ops_and_the_rest_falls_back(tiny):
    graph = mlp((8, 16, 4))
    x = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    (expected,) = dh.Session(graph, backends=["cpu"]).run({"x": x})
    with pytest.warns(FallbackWarning, match="Softmax"):
        sess = dh.Session(graph, backends=[tiny])
    (got,) = sess.run({"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    placement = {n.op: p.backend.name for p in sess.plan.partitions for n in p.nodes}
    assert placement["MatMul"] == "tiny" and placement["Relu"] == "tiny"


def test_tiny_declines_other_dtypes(tiny):
    b = dh.GraphBuilder()
    x = b.input("x", "float64", (2,))
    b.output(b.Relu(x, name="r"))
    sess = dh.Session(b.build(), backends=[tiny, "cpu"])
    assert sess.plan.backend_of()["r"] == "cpu"
