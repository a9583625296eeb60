"""The conformance suite as pytest tests: ``pytest --pyargs dh_core.conformance --dh-backend NAME``.

``test_op`` runs one op x dtype case (the same check as ``dh conformance``): it fails
with hypothesis's smallest failing example and the command that replays it, is an
expected failure (strict) where the backend's manifest says so, and is skipped where
the backend does not claim the case. ``test_runtime`` runs one runtime check. The
parameters come from the ``dh_core.conformance.pytest_plugin`` plugin.
"""
from __future__ import annotations

import pytest


def test_op(dh_case, dh_conformance, request):
    from dh_core.conformance.runner import check_case

    expected = request.node.get_closest_marker("xfail") is not None
    result = check_case(dh_conformance.backend, dh_case, mode=dh_conformance.mode,
                        manifest=dh_conformance.manifest, expect_failure=expected)
    if result.status == "unsupported":
        pytest.skip(f"{dh_conformance.backend.name} does not claim {dh_case.op} for {dh_case.dtype}")
    if result.status == "fail":
        f = result.failure
        pytest.fail(f"{f.op} {f.dtype}: {f.message}\nexample: {f.example}\nreproduce: {f.reproduce}",
                    pytrace=False)


def test_runtime(dh_runtime_check, dh_conformance):
    from dh_core.conformance.runtime_checks import run_check

    outcome = run_check(dh_conformance.backend, dh_runtime_check)
    if outcome.status == "skip":
        pytest.skip(outcome.message)
    if outcome.status == "fail":
        pytest.fail(f"{dh_runtime_check}: {outcome.message}", pytrace=False)
