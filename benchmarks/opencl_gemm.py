"""GFLOP/s of the OpenCL backend's GEMM against numpy's BLAS, square float32 matrices.

    python benchmarks/opencl_gemm.py [--sizes 256 512 1024 2048] [--repeat 7] [--device opencl:0]

Operands live on the device before timing (a model's weights and activations do); each
OpenCL run includes packing and waits for the queue to finish. The two are timed in turn
within each repeat, so load from other processes falls on both alike. Prints medians and bests,
the ratio to numpy per size, and whether 1024 reaches the goal of 25% of numpy's BLAS.
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import header, interleaved_seconds

GOAL_SIZE, GOAL_RATIO = 1024, 0.25


def gflops(n: int, seconds: float) -> float:
    return 2.0 * n ** 3 / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--device", default="opencl:0")
    args = parser.parse_args()

    from dh_backend_opencl.backend import OpenCLBackend
    from dh_backend_opencl.gemm import gemm

    backend = OpenCLBackend()
    if backend.available() is not True:
        raise SystemExit(f"OpenCL backend not available: {backend.available()}")
    rt = backend.runtime(args.device)
    header("OpenCL GEMM vs numpy BLAS, float32, square")
    print(f"device: {rt.device.name.strip()} ({rt.device.platform.name.strip()}), "
          f"{rt.device.max_compute_units} compute units")
    print("GFLOP/s, median and best; ratio: OpenCL median / numpy median")
    print(f"{'n':>6} {'opencl med':>11} {'best':>8} {'numpy med':>10} {'best':>8} {'ratio':>7}")
    rng = np.random.default_rng(0)
    goal = None
    for n in args.sizes:
        a, b = (rng.standard_normal((n, n), dtype=np.float32) for _ in range(2))
        da, db = rt.upload(a), rt.upload(b)

        def device_run():
            y = gemm(rt, da, db, (n, 1), (n, 1), n, n, n)
            rt.queue.finish()
            return y

        np.testing.assert_allclose(device_run().get(), a @ b, rtol=1e-3, atol=1e-3 * np.sqrt(n))
        (cl_med, cl_best), (np_med, np_best) = interleaved_seconds([device_run, lambda: a @ b], args.repeat)
        ratio = np_med / cl_med
        print(f"{n:>6} {gflops(n, cl_med):11.1f} {gflops(n, cl_best):8.1f} "
              f"{gflops(n, np_med):10.1f} {gflops(n, np_best):8.1f} {ratio:7.0%}")
        if n == GOAL_SIZE:
            goal = ratio
    if goal is not None:
        verdict = "meets" if goal >= GOAL_RATIO else "misses"
        print(f"{GOAL_SIZE}: OpenCL at {goal:.0%} of numpy's BLAS {verdict} the {GOAL_RATIO:.0%} goal")


if __name__ == "__main__":
    main()
