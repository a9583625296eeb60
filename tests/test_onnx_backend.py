"""onnx's own backend test runner on dh's CPU backend: the ONNX node cases (and, with
``DH_ONNX_MODEL_TESTS=1``, the model tests shipped inside the onnx package).

Expected failures come from the CPU backend's manifest (``onnx_xfail``: regex ->
reason, strict; ``onnx_random``: random outputs that match only by chance, not
strict); ``onnx_pending`` lists cases of ops being added to the library,
skipped until they land.
"""
from __future__ import annotations

import os
import re

import numpy as np
import onnx.backend.test
import pytest

import dh_core.onnx_io.backend as dh_backend
from dh_core.conformance.runner import manifest_of

MODEL_TESTS = os.environ.get("DH_ONNX_MODEL_TESTS") == "1"
DEFAULT_CLASSES = ("OnnxBackendNodeModelTest", "OnnxBackendSimpleModelTest")
"""Test classes that run by default. The PyTorch-converted models take seconds, but
the real models (``light/``) compute their expected outputs with onnx.reference on
their first run (minutes; cached under ~/.onnx/models), so all model tests wait for
``DH_ONNX_MODEL_TESTS=1``."""

MANIFEST = manifest_of("cpu")


def _marked(test_name: str) -> list:
    """pytest marks of one case from the manifest: strict xfail or skip. The manifest
    names cases as onnx does (``test_abs``), without the runner's device suffix."""
    name = test_name.removesuffix("_cpu")
    for pattern, reason in MANIFEST.get("onnx_xfail", {}).items():
        if re.search(pattern, name):
            return [pytest.mark.xfail(reason=reason, strict=True)]
    for pattern, reason in MANIFEST.get("onnx_random", {}).items():
        if re.search(pattern, name):
            return [pytest.mark.xfail(reason=reason, strict=False)]
    for pattern, reason in MANIFEST.get("onnx_pending", {}).items():
        if re.search(pattern, name):
            return [pytest.mark.skip(reason=reason)]
    return []


def _test_classes() -> dict:
    backend_test = onnx.backend.test.BackendTest(dh_backend, __name__)
    classes = {}
    for class_name, cls in backend_test.test_cases.items():
        if not MODEL_TESTS and class_name not in DEFAULT_CLASSES:
            continue
        for attr in [a for a in vars(cls) if a.startswith("test_")]:
            if not attr.endswith("_cpu"):  # the runner's CUDA twins: dh has no device named CUDA
                delattr(cls, attr)
                continue
            for mark in _marked(attr):
                setattr(cls, attr, mark(getattr(cls, attr)))
        classes[class_name] = cls
    return classes


with np.errstate(all="ignore"):
    globals().update(_test_classes())
