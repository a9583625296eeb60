"""Movement ops on the OpenCL backend against the CPU backend, on device-resident data.

    python benchmarks/opencl_movement.py [--size 512] [--repeat 20]

For each op, a one-node graph on a (size, size) float32 input: the median time of a run
on opencl:0 (input already on the device, waiting for the queue to finish) and on the
CPU backend, and their ratio (above 1: OpenCL is slower). The CPU backend may answer
with numpy views (Transpose, Slice, Expand), so those rows set a copy against none.
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import median_seconds, opencl_against_cpu

import dh_core as dh
from dh_core.backend import Device


def cases(n: int):
    """(name, op, data shape, constant inputs, attributes)."""
    half = np.array([n // 2], np.int64)
    return [
        ("Transpose", "Transpose", (n, n), [], {"perm": [1, 0]}),
        ("Slice step 2", "Slice", (n, n), [np.array([0], np.int64), np.array([n], np.int64),
                                           np.array([1], np.int64), np.array([2], np.int64)], {}),
        ("Concat x2", "Concat", (n, n), ["data"], {"axis": 1}),
        ("Gather rows", "Gather", (n, n), [np.arange(n - 1, -1, -2, dtype=np.int64)], {"axis": 0}),
        ("Pad reflect", "Pad", (n, n), [np.array([0, 8, 0, 8], np.int64)], {"mode": "reflect"}),
        ("Expand 4x", "Expand", (1, n, n), [np.array([4, n, n], np.int64)], {}),
        ("Tile 2x2", "Tile", (n, n), [np.array([2, 2], np.int64)], {}),
        ("Split halves", "Split", (n, n), [np.array([n // 2, n - n // 2], np.int64)], {"axis": 0}),
        ("Reshape", "Reshape", (n, n), [np.concatenate([half, np.array([-1], np.int64)])], {}),
    ]


def graph(op: str, shape, constants, attrs) -> dh.Graph:
    b = dh.GraphBuilder(op)
    x = b.input("x", "float32", shape)
    inputs = [x if isinstance(c, str) else b.constant(c) for c in constants]
    outputs = 2 if op == "Split" else 1
    ys = b.node(op, x, *inputs, outputs=outputs, **attrs)
    b.output(*([ys] if isinstance(ys, str) else ys))
    return b.build()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    opencl, cpu, device, queue = opencl_against_cpu("OpenCL movement ops vs the CPU backend", args.size, args.repeat)
    print(f"{'op':14} {'opencl ms':>10} {'cpu ms':>10} {'ratio':>7}")
    rng = np.random.default_rng(0)
    for name, op, shape, constants, attrs in cases(args.size):
        g = graph(op, shape, constants, attrs)
        x = rng.standard_normal(shape).astype(np.float32)
        program = opencl.compile(g, device)
        on_device = [opencl.to_device(x, device)]

        def device_run():
            program.run(on_device)
            queue.finish()

        cpu_program = cpu.compile(g, Device("cpu"))
        expected = cpu_program.run([x])
        np.testing.assert_array_equal(opencl.to_host(program.run(on_device)[0]), expected[0])
        device_s, _ = median_seconds(device_run, args.repeat)
        cpu_s, _ = median_seconds(lambda: cpu_program.run([x]), args.repeat)
        print(f"{name:14} {device_s * 1e3:10.3f} {cpu_s * 1e3:10.3f} {device_s / cpu_s:7.2f}")


if __name__ == "__main__":
    main()
