"""Latency of a ResNet-style CNN (ResNet-18 built with the builder) on the CPU backend.

    python benchmarks/cnn.py [--image 224] [--batch 1] [--repeat 10]

Prints the median and best latency of Session.run, and the same graph evaluated node by
node with the op library's numpy references as the baseline.
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import header, median_seconds

import dh_core as dh
from dh_core.ops import registry
from dh_core.zoo import resnet


def reference_run(graph, feeds):
    """Evaluate the graph node by node with the numpy references (no backend)."""
    env = dict(graph.initializers)
    env.update(feeds)
    for node in graph.nodes:
        outs = registry.get(node.op).run_reference(node, [env[i] if i else None for i in node.inputs])
        env.update(zip(node.outputs, outs))
    return [env[o] for o in graph.output_names]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=int, default=224)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--no-reference", action="store_true", help="skip the slow reference baseline")
    args = parser.parse_args()
    header(f"ResNet-18, batch {args.batch}, {args.image}x{args.image}, CPU backend")
    graph = resnet(image=args.image)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, args.image, args.image)).astype(np.float32)
    sess = dh.Session(graph, backends=["cpu"])
    print(f"nodes after planning: {sum(len(p.nodes) for p in sess.plan.partitions)} "
          f"(graph had {len(graph.nodes)})")
    median, best = median_seconds(lambda: sess.run({"input": x}), args.repeat)
    print(f"dh cpu      median {median * 1e3:9.2f} ms   best {best * 1e3:9.2f} ms")
    if not args.no_reference:
        expected = reference_run(graph, {"input": x})[0]
        np.testing.assert_allclose(sess.run({"input": x})[0], expected, rtol=1e-3, atol=1e-3)
        ref_median, _ = median_seconds(lambda: reference_run(graph, {"input": x}), max(1, args.repeat // 5), 0)
        print(f"references  median {ref_median * 1e3:9.2f} ms   (ratio {ref_median / median:.1f}x)")


if __name__ == "__main__":
    main()
