"""Latency of a ResNet-style CNN (ResNet-18 built with the builder) on OpenCL + CPU vs CPU.

    python benchmarks/opencl_cnn.py [--image 224] [--batch 1] [--repeat 10]

Runs Session(backends=["opencl", "cpu"]) and Session(backends=["cpu"]) on the same graph,
checks that they agree, times them in turn within each repeat, and prints the median and best latency of each, the OpenCL
device, the share of plan nodes placed on opencl (ops no OpenCL kernel takes fall back
to the CPU backend), which ops run where, and the copies between partitions.
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np
from _common import header, interleaved_seconds

import dh_core as dh
from dh_core.zoo import resnet


def placement(plan) -> Counter:
    """(backend, op) -> node count."""
    return Counter((p.backend.name, n.op) for p in plan.partitions for n in p.nodes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()

    from dh_backend_opencl.backend import OpenCLBackend

    backend = OpenCLBackend()
    if backend.available() is not True:
        raise SystemExit(f"OpenCL backend not available: {backend.available()}")
    header(f"ResNet-18, batch {args.batch}, {args.image}x{args.image}, OpenCL + CPU vs CPU")
    print(f"OpenCL device: {backend.describe()[0]}")
    graph = resnet(image=args.image)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.image, args.image)).astype(np.float32)
    mixed = dh.Session(graph, backends=["opencl", "cpu"], fallback="allow")
    cpu = dh.Session(graph, backends=["cpu"])

    counts = placement(mixed.plan)
    total = sum(counts.values())
    on_device = sum(c for (name, _), c in counts.items() if name == "opencl")
    print(f"plan: {total} nodes, {on_device} on opencl ({on_device / total:.0%}), "
          f"{len(mixed.plan.partitions)} partitions, {len(mixed.plan.copies)} copies")
    for name in sorted({name for name, _ in counts}):
        ops = ", ".join(f"{op} x{c}" for (b, op), c in sorted(counts.items()) if b == name)
        print(f"  {name}: {ops}")

    np.testing.assert_allclose(mixed.run({"input": x})[0], cpu.run({"input": x})[0], rtol=1e-3, atol=1e-3)
    (mixed_med, mixed_best), (cpu_med, cpu_best) = interleaved_seconds(
        [lambda: mixed.run({"input": x}), lambda: cpu.run({"input": x})], args.repeat)
    print(f"opencl+cpu  median {mixed_med * 1e3:9.2f} ms   best {mixed_best * 1e3:9.2f} ms")
    print(f"cpu         median {cpu_med * 1e3:9.2f} ms   best {cpu_best * 1e3:9.2f} ms")
    print(f"speed-up of opencl+cpu over cpu (medians): {cpu_med / mixed_med:.2f}x")


if __name__ == "__main__":
    main()
