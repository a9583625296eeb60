"""pytest plugin of the conformance suite: ``pytest --pyargs dh_core.conformance --dh-backend X``."""
from __future__ import annotations


def pytest_addoption(parser) -> None:
    group = parser.getgroup("dh", "dh conformance suite")
    group.addoption("--dh-backend", default=None, metavar="NAME",
                    help="run the dh conformance suite against this backend")
    group.addoption("--dh-thorough", action="store_true", default=False,
                    help="thorough conformance mode: more examples, random seed")
