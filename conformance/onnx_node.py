"""Tier 2 of the conformance suite: ONNX's own node test cases through a backend.

The installed onnx package generates the cases in memory
(``onnx.backend.test.case.node.collect_testcases``): a one-op model, input data and the
expected outputs. Each runs through a Session on the backend under test alone (no CPU
fallback) and is compared with the rules and tolerances of onnx's own test runner.
"""
from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dh_core.errors import GraphError, ModelLoadError, UnsupportedOpError

STATUSES = ("pass", "fail", "xfail", "unsupported")


@dataclass(frozen=True)
class NodeResult:
    """The outcome of one case; ``message`` says why it failed or is unsupported."""

    case: str
    status: str
    message: str = ""


@functools.lru_cache(maxsize=1)
def node_cases() -> tuple[Any, ...]:
    """Every node test case of the installed onnx, generated once per process."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return tuple(sorted(collect_testcases(None), key=lambda c: c.name))


def selected_cases(ops: Sequence[str] | None = None) -> list[Any]:
    """The node cases, narrowed to those whose model uses one of ``ops``."""
    cases = node_cases()
    if not ops:
        return list(cases)
    wanted = set(ops)
    return [c for c in cases if wanted & {n.op_type for n in c.model.graph.node}]


def expected_failure(manifest: dict, name: str) -> tuple[str | None, bool]:
    """(reason, strict) when the manifest expects a case to fail, else (None, True).

    ``manifest["onnx_xfail"]`` maps regular expressions, searched in the case name, to
    reasons (strict: a pass is reported); ``manifest["onnx_random"]`` does the same for
    cases whose expected outputs are another generator's random draws, and
    ``manifest["onnx_pending"]`` for cases of ops being added: both may pass."""
    for section, strict in (("onnx_xfail", True), ("onnx_random", False), ("onnx_pending", False)):
        for pattern, reason in manifest.get(section, {}).items():
            if re.search(pattern, name):
                return reason, strict
    return None, True


def run_case(backend: Any, case: Any) -> NodeResult:
    """Import a case's model, run every data set on ``backend`` and compare."""
    from onnx.backend.test.runner import Runner

    from dh_core.onnx_io import import_model
    from dh_core.session import Session

    try:
        graph = import_model(case.model)
        session = Session(graph, backends=[backend], fallback="error")
    except UnsupportedOpError as exc:
        return NodeResult(case.name, "unsupported", str(exc))
    except (ModelLoadError, GraphError) as exc:
        return NodeResult(case.name, "unsupported", f"the IR cannot hold this model: {exc}")
    names = session.graph.input_names
    try:
        for inputs, expected in case.data_sets:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                outputs = session.run(dict(zip(names, map(_array, inputs))))
            Runner.assert_similar_outputs([_array(e) for e in expected], outputs, rtol=case.rtol, atol=case.atol)
    except AssertionError as exc:
        return NodeResult(case.name, "fail", " ".join(str(exc).split())[:500])
    except Exception as exc:  # a backend error is a failure of this case, not of the suite
        return NodeResult(case.name, "fail", f"{type(exc).__name__}: {exc}"[:500])
    return NodeResult(case.name, "pass")


def _array(value: Any) -> Any:
    """Case data as numpy: some generated cases hold TensorProtos instead of arrays."""
    from onnx import TensorProto, numpy_helper

    return numpy_helper.to_array(value) if isinstance(value, TensorProto) else value


def apply_expectation(result: NodeResult, reason: str | None, strict: bool = True) -> NodeResult:
    """Apply the manifest: a failure it expects is "xfail"; with ``strict``, a case it
    expects to fail that passes is a failure."""
    if reason is None or result.status == "unsupported":
        return result
    if result.status == "fail":
        return NodeResult(result.case, "xfail", reason)
    if not strict:
        return result
    return NodeResult(result.case, "fail", f"unexpected pass: the manifest expects a failure ({reason})")
