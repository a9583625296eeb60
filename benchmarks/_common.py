"""Shared helpers of the benchmark scripts: timing and a description of the machine."""
from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 2) -> tuple[float, float]:
    """Median and minimum wall time of ``fn`` over ``repeat`` runs after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), min(times)


def interleaved_seconds(fns: Sequence[Callable[[], object]], repeat: int,
                        warmup: int = 2) -> list[tuple[float, float]]:
    """Median and minimum wall time of each of ``fns``, timed in turn within each repeat so
    that load from other processes falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return [(statistics.median(t), min(t)) for t in times]


def blas_threads() -> str:
    """numpy's BLAS library and its thread count, as threadpoolctl reports them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
               if k in os.environ}
        return f"threadpoolctl not installed; thread env: {env or 'unset'}"
    pools = [f"{p['internal_api']} {p.get('version') or ''} ({p['num_threads']} threads)".replace("  ", " ")
             for p in threadpool_info() if p["user_api"] == "blas"]
    return ", ".join(pools) or "no BLAS pool found"


def machine() -> str:
    return f"{platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}"


def header(title: str) -> None:
    import numpy

    print(f"# {title}")
    print(f"machine: {machine()}; numpy {numpy.__version__}; BLAS: {blas_threads()}")


def opencl_against_cpu(title: str, size: int, repeat: int):
    """Prints the header and the device line of an OpenCL-vs-CPU op benchmark; returns
    the OpenCL backend, the CPU backend, ``opencl:0`` and its queue."""
    from dh_core.backend import Device
    from dh_core.backends import get as get_backend

    header(title)
    opencl, cpu = get_backend("opencl"), get_backend("cpu")
    device = Device("opencl:0")
    print(f"device: {opencl.describe()[0]}; size {size}; runs: {repeat}")
    return opencl, cpu, device, opencl.runtime(device).queue
