"""Indexing ops on the OpenCL backend against the CPU backend, on device-resident data.

    python benchmarks/opencl_indexing.py [--size 256] [--repeat 10]

For each op, a one-node graph on a (size, size) float32 input with its index inputs as
initializers: the median time of a run on opencl:0 (input on the device, waiting for
the queue) and on the CPU backend, timed in turn, and their ratio (above 1: OpenCL is
slower). The outputs are checked equal first. TopK ranks each element against its whole
line (O(size) per element) and ScatterND walks its rows one after another per slice
position, so those rows show the costs of those choices.
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import interleaved_seconds, opencl_against_cpu

import dh_core as dh
from dh_core.backend import Device


def cases(n: int, rng: np.random.Generator):
    """(name, op, constant inputs after the data, attributes, outputs)."""
    rows = rng.integers(-n, n, (n, 1), dtype=np.int64)
    return [
        ("GatherElements", "GatherElements", [rng.integers(-n, n, (n, n), dtype=np.int64)], {"axis": 1}, 1),
        ("GatherND rows", "GatherND", [rows], {}, 1),
        ("ScatterElements+", "ScatterElements", [rng.integers(-n, n, (n, n // 4), dtype=np.int64),
                                                 rng.standard_normal((n, n // 4), np.float32)],
         {"axis": 1, "reduction": "add"}, 1),
        ("ScatterND rows", "ScatterND", [rows, rng.standard_normal((n, n), np.float32)], {}, 1),
        ("CumSum axis 0", "CumSum", [np.array(0, np.int64)], {}, 1),
        ("Trilu", "Trilu", [], {}, 1),
        ("TopK k=8", "TopK", [np.array([8], np.int64)], {}, 2),
    ]


def graph(op: str, n: int, constants, attrs, outputs: int) -> dh.Graph:
    b = dh.GraphBuilder(op)
    ys = b.node(op, b.input("x", "float32", (n, n)), *(b.constant(c) for c in constants), outputs=outputs, **attrs)
    b.output(*([ys] if isinstance(ys, str) else ys))
    return b.build()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    opencl, cpu, device, queue = opencl_against_cpu("OpenCL indexing ops vs the CPU backend", args.size, args.repeat)
    print(f"{'op':17} {'opencl ms':>10} {'cpu ms':>10} {'ratio':>7}")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.size, args.size)).astype(np.float32)
    for name, op, constants, attrs, outputs in cases(args.size, rng):
        g = graph(op, args.size, constants, attrs, outputs)
        program, cpu_program = opencl.compile(g, device), cpu.compile(g, Device("cpu"))
        on_device = [opencl.to_device(x, device)]
        for got, want in zip(program.run(on_device), cpu_program.run([x])):
            np.testing.assert_allclose(opencl.to_host(got), want, rtol=1e-5, atol=1e-5)

        def device_run():
            program.run(on_device)
            queue.finish()

        (device_s, _), (cpu_s, _) = interleaved_seconds([device_run, lambda: cpu_program.run([x])], args.repeat)
        print(f"{name:17} {device_s * 1e3:10.3f} {cpu_s * 1e3:10.3f} {device_s / cpu_s:7.2f}")


if __name__ == "__main__":
    main()
