"""OpenCL contexts, queues and the program cache.

A program is built once per context (an in-memory cache keyed by source and options)
and its binary is kept on disk by pyopencl across processes: in ``DH_OPENCL_CACHE_DIR``
when set, else pyopencl's own (``PYOPENCL_CACHE_DIR`` or the user cache folder).
``STATS`` counts builds from source and disk-cache hits; ``DH_OPENCL_LOG=1`` prints a
line for each.
"""
from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass, field
from importlib import resources

import numpy as np
import pyopencl as cl
import pyopencl.array as cl_array
from pyopencl.cache import create_built_program_from_source_cached

from dh_core.errors import DeviceError


@dataclass
class CacheStats:
    """How programs were obtained in this process."""

    compiled: int = 0
    """Built from source (not in the disk cache)."""
    disk_hits: int = 0
    """Loaded from a binary in the disk cache."""
    memory_hits: int = 0
    """Already built in this context."""

    def reset(self) -> None:
        self.compiled = self.disk_hits = self.memory_hits = 0


STATS = CacheStats()
CONSTANTS_KEPT = 256
"""How many small metadata arrays (Runtime.constant) a device keeps uploaded."""


def all_devices() -> list[tuple[cl.Platform, cl.Device]]:
    """Every (platform, device) pair, in platform then device order: ``opencl:N`` is the Nth."""
    found = []
    for platform in cl.get_platforms():
        try:
            devices = platform.get_devices()
        except cl.Error:
            continue
        found.extend((platform, d) for d in devices)
    return found


def cache_dir() -> str | None:
    """The folder pyopencl keeps binaries in (None: pyopencl's default)."""
    return os.environ.get("DH_OPENCL_CACHE_DIR") or None


@dataclass
class Runtime:
    """One device's context, queue and built programs."""

    device: cl.Device
    context: cl.Context
    queue: cl.CommandQueue
    programs: dict[tuple[str, str], cl.Program] = field(default_factory=dict)
    kernels: dict[tuple[str, str, str], cl.Kernel] = field(default_factory=dict)
    constants: dict[tuple[str, tuple, bytes], cl_array.Array] = field(default_factory=dict)

    @classmethod
    def open(cls, index: int) -> Runtime:
        devices = all_devices()
        if not 0 <= index < len(devices):
            raise DeviceError(f"no OpenCL device opencl:{index}: {len(devices)} found")
        device = devices[index][1]
        context = cl.Context([device])
        return cls(device, context, cl.CommandQueue(context))

    @property
    def has_fp16(self) -> bool:
        return "cl_khr_fp16" in self.device.extensions

    def kernel(self, source: str, name: str, options: str = "") -> cl.Kernel:
        """Kernel ``name`` of ``source``, building the program once per context."""
        found = self.kernels.get((source, options, name))
        if found is not None:
            STATS.memory_hits += 1
            return found
        key = (source, options)
        program = self.programs.get(key)
        if program is None:
            built, was_cached = create_built_program_from_source_cached(
                self.context, source, options.encode(), [self.device], cache_dir=cache_dir())
            program = cl.Program(built)
            self.programs[key] = program
            if was_cached:
                STATS.disk_hits += 1
            else:
                STATS.compiled += 1
            if os.environ.get("DH_OPENCL_LOG", "") not in ("", "0"):
                how = "disk cache hit" if was_cached else "compiled"
                print(f"dh-opencl: {how}: {name}", file=sys.stderr)
        else:
            STATS.memory_hits += 1
        kernel = self.kernels[(source, options, name)] = cl.Kernel(program, name)
        return kernel

    def empty(self, shape, dtype) -> cl_array.Array:
        return cl_array.empty(self.queue, tuple(shape), np.dtype(dtype))

    def constant(self, array: np.ndarray) -> cl_array.Array:
        """A device copy of a small host array (kernel metadata), uploaded once per content
        and kept for the last ``CONSTANTS_KEPT`` contents; kernels must only read it."""
        key = (array.dtype.str, array.shape, array.tobytes())
        found = self.constants.pop(key, None)
        if found is None:
            found = self.upload(array)
            if len(self.constants) >= CONSTANTS_KEPT:
                del self.constants[next(iter(self.constants))]
        self.constants[key] = found  # most recently used last
        return found

    def upload(self, array: np.ndarray) -> cl_array.Array:
        """``array`` on the device; a small one keeps its host values beside it
        (see :func:`host_values`)."""
        if not array.flags.c_contiguous:
            array = array.copy(order="C")
        buf = cl_array.to_device(self.queue, array)
        if array.size <= HOST_SHADOW_SIZE:
            buf.host_values = array.copy()
        return buf


HOST_SHADOW_SIZE = 64
"""Arrays up to this many elements keep a host copy when uploaded: index inputs
(shapes, axes, pads) computed on the host reach a kernel without a read back."""


def host_values(buf: cl_array.Array) -> np.ndarray:
    """The values of a small index input: its host copy when it came from the host,
    else read from the device (a synchronisation point)."""
    values = getattr(buf, "host_values", None)
    return values if values is not None else buf.get()


@functools.cache
def source(name: str) -> str:
    """The text of a kernel file shipped in ``cl/`` (read once per process)."""
    return resources.files(__package__).joinpath("cl", name).read_text()


def program(*names: str) -> str:
    """``cl/half_io.cl`` (float16 loads and stores) followed by the kernel files ``names``."""
    return "".join(source(n) for n in ("half_io.cl", *names))


def half_io(half_in: bool, half_out: bool) -> list[str]:
    """The macros of ``cl/half_io.cl`` for float16 input and output."""
    return ["HALF_IN"] * half_in + ["HALF_OUT"] * half_out
