"""Entry point of the OpenCL backend: declares it without importing pyopencl."""
from __future__ import annotations

from dh_core.plugins import BackendSpec, hookimpl


def _make_backend():
    from .backend import OpenCLBackend

    return OpenCLBackend()


@hookimpl
def dh_backends():
    return [BackendSpec("opencl", _make_backend, description="OpenCL C kernels (pyopencl; PoCL on CPUs)")]


@hookimpl
def dh_conformance_manifest(backend):
    if backend != "opencl":
        return None
    from .manifest import MANIFEST

    return MANIFEST
