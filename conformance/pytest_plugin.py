"""pytest plugin of the conformance suite: ``pytest --pyargs dh_core.conformance --dh-backend X``.

Registered for every pytest run through the ``pytest11`` entry point, so it stays out
of the way: without ``--dh-backend`` it only adds its options, and it imports neither
hypothesis nor the op library until a backend is named.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

NO_BACKEND = ("the dh conformance tests need a backend: "
              "pytest --pyargs dh_core.conformance --dh-backend NAME (see 'dh backends')")


@dataclass
class Conformance:
    """What the conformance tests of one pytest session share."""

    backend: Any
    mode: Any
    """runner.Mode: quick or thorough, and the seed."""
    manifest: dict


_STATE = pytest.StashKey[Conformance]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dh", "dh conformance suite")
    group.addoption("--dh-backend", default=None, metavar="NAME",
                    help="run the dh conformance suite against this backend")
    group.addoption("--dh-thorough", action="store_true", default=False,
                    help="thorough conformance mode: many random examples per op instead of a few derandomized ones")
    group.addoption("--dh-seed", type=int, default=None, metavar="N",
                    help="seed of the conformance examples (replays a thorough run)")


def pytest_configure(config: pytest.Config) -> None:
    name = config.getoption("dh_backend", None)
    if not name:
        return
    from dh_core import backends
    from dh_core.errors import DHError

    from .runner import Mode, manifest_of

    try:
        backend = backends.get(name)
    except DHError as exc:
        raise pytest.UsageError(f"--dh-backend: {exc}") from None
    reason = backend.available()
    if reason is not True:
        raise pytest.UsageError(f"--dh-backend: backend '{name}' is not available: {reason}")
    mode = Mode.make(quick=not config.getoption("dh_thorough"), seed=config.getoption("dh_seed"))
    config.stash[_STATE] = Conformance(backend, mode, manifest_of(name))


def pytest_report_header(config: pytest.Config) -> str | None:
    state = config.stash.get(_STATE, None)
    if state is None:
        return None
    mode = "quick" if state.mode.quick else "thorough"
    seed = f", seed {state.mode.seed}" if state.mode.seed is not None else ", derandomized"
    return f"dh conformance: backend {state.backend.name}, {mode} mode ({state.mode.examples} examples{seed})"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``dh_case`` over op x dtype (xfail, strict, from the manifest) and
    ``dh_runtime_check`` over the runtime checks."""
    wanted = [f for f in ("dh_case", "dh_runtime_check") if f in metafunc.fixturenames]
    if not wanted:
        return
    state = metafunc.config.stash.get(_STATE, None)
    for fixture in wanted:
        if state is None:
            metafunc.parametrize(fixture, [pytest.param(None, marks=pytest.mark.skip(reason=NO_BACKEND),
                                                        id="no-backend")])
        elif fixture == "dh_case":
            metafunc.parametrize(fixture, _case_params(state))
        else:
            from .runtime_checks import CHECKS

            metafunc.parametrize(fixture, list(CHECKS), ids=list(CHECKS))


def _case_params(state: Conformance) -> list:
    from .runner import cases, expected_failure

    params = []
    for case in cases():
        reason = expected_failure(state.manifest, case)
        marks = [pytest.mark.xfail(strict=True, reason=f"manifest: {reason}")] if reason is not None else []
        params.append(pytest.param(case, marks=marks, id=case.id))
    return params


@pytest.fixture(scope="session")
def dh_conformance(request: pytest.FixtureRequest) -> Conformance:
    """The backend under test, the mode and the manifest."""
    state = request.config.stash.get(_STATE, None)
    if state is None:
        pytest.skip(NO_BACKEND)
    return state
