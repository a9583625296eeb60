"""Latency of a chain-heavy elementwise graph on OpenCL with and without kernel fusion.

    python benchmarks/opencl_fusion.py [--shape 1,64,56,56] [--blocks 8] [--repeat 20]

Each block is a BatchNorm-decomposed Mul -> Add -> Relu, a Swish (Sigmoid -> Mul) and a
residual Add, followed by a Transpose (not elementwise, so each block is one group).
The graph is compiled twice (``DH_OPENCL_FUSION`` 1 and 0); both programs are checked to
give identical bytes, timed in turn within each repeat (device array in, host array
out), and the script prints the kernel launches (program steps) and the median and best
latency of each, and the speed-up of the medians.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
from _common import header, interleaved_seconds

from dh_core.backend import Device
from dh_core.builder import GraphBuilder
from dh_core.ir import Graph


def chain_graph(shape: tuple[int, ...], blocks: int, seed: int = 0) -> Graph:
    """``blocks`` of Mul, Add, Relu, Sigmoid, Mul, Add then a Transpose of the last two axes."""
    rng = np.random.default_rng(seed)
    channel = (shape[1],) + (1,) * (len(shape) - 2)
    perm = list(range(len(shape) - 2)) + [len(shape) - 1, len(shape) - 2]
    b = GraphBuilder("chains")
    y = b.input("x", "float32", shape)
    for _ in range(blocks):
        scale = b.constant(rng.uniform(0.5, 1.5, channel).astype(np.float32))
        shift = b.constant(rng.normal(0, 0.1, channel).astype(np.float32))
        h = b.Relu(b.Add(b.Mul(y, scale), shift))
        h = b.Mul(h, b.Sigmoid(h))
        y = b.Transpose(b.Add(h, y), perm=perm)
    b.output(y)
    return b.build()


def compiled(backend, graph: Graph, device: Device, fused: bool):
    os.environ["DH_OPENCL_FUSION"] = "1" if fused else "0"
    return backend.compile(graph, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", default="1,64,56,56")
    parser.add_argument("--blocks", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from dh_backend_opencl.backend import OpenCLBackend

    backend = OpenCLBackend()
    if backend.available() is not True:
        raise SystemExit(f"OpenCL backend not available: {backend.available()}")
    shape = tuple(int(d) for d in args.shape.split(","))
    header(f"{args.blocks} elementwise blocks on {list(shape)} float32, OpenCL fused vs unfused")
    print(f"OpenCL device: {backend.describe()[0]}")
    device = Device("opencl:0")
    graph = chain_graph(shape, args.blocks)
    fused, plain = (compiled(backend, graph, device, on) for on in (True, False))
    x = backend.to_device(np.random.default_rng(1).standard_normal(shape).astype(np.float32), device)

    def runner(program):
        return lambda: backend.to_host(program.run([x])[0])

    assert runner(fused)().tobytes() == runner(plain)().tobytes(), "fused and unfused results differ"
    print(f"graph: {len(graph.nodes)} nodes; launches: fused {len(fused.steps)}, unfused {len(plain.steps)}")
    (fused_med, fused_best), (plain_med, plain_best) = interleaved_seconds([runner(fused), runner(plain)],
                                                                           args.repeat)
    print(f"fused    median {fused_med * 1e3:9.2f} ms   best {fused_best * 1e3:9.2f} ms")
    print(f"unfused  median {plain_med * 1e3:9.2f} ms   best {plain_best * 1e3:9.2f} ms")
    print(f"speed-up of fused over unfused (medians): {plain_med / fused_med:.2f}x")


if __name__ == "__main__":
    main()
