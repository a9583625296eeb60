"""Entry point of the CPU backend: declares it without importing its kernels."""
from __future__ import annotations

from dh_core.plugins import BackendSpec, hookimpl


def _make_backend():
    from .backend import CPUBackend

    return CPUBackend()


@hookimpl
def dh_backends():
    return [BackendSpec("cpu", _make_backend, description="numpy/BLAS kernels on the host")]


@hookimpl
def dh_conformance_manifest(backend):
    if backend != "cpu":
        return None
    from .manifest import MANIFEST

    return MANIFEST
