"""Per-node dispatch overhead of a Session: a chain of cheap ops on tiny tensors.

    python benchmarks/dispatch.py [--nodes 1000] [--repeat 50]

Prints the median time per node through the session and through plain numpy calls of
the same ops, and their difference: what dh adds per node.
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import header, median_seconds

import dh_core as dh


def chain(n: int):
    b = dh.GraphBuilder("chain")
    y = b.input("x", "float32", (4,))
    one = b.constant(np.ones(4, np.float32))
    for i in range(n):
        y = b.Add(y, one) if i % 2 == 0 else b.Neg(y)
    b.output(y)
    return b.build()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    header("session dispatch overhead")
    sess = dh.Session(chain(args.nodes), backends=["cpu"])
    x = np.zeros(4, np.float32)
    feeds = {"x": x}
    session_s, _ = median_seconds(lambda: sess.run(feeds), args.repeat)
    one = np.ones(4, np.float32)

    def plain():
        y = x
        for i in range(args.nodes):
            y = np.add(y, one) if i % 2 == 0 else np.negative(y)
        return y

    np.testing.assert_array_equal(sess.run(feeds)[0], plain())
    numpy_s, _ = median_seconds(plain, args.repeat)
    per_node = session_s / args.nodes * 1e6
    bare = numpy_s / args.nodes * 1e6
    print(f"nodes: {args.nodes}, partitions: {len(sess.plan.partitions)}, runs: {args.repeat}")
    print(f"session   median {per_node:8.2f} us/node")
    print(f"numpy     median {bare:8.2f} us/node")
    print(f"overhead         {per_node - bare:8.2f} us/node  (target < 20)")


if __name__ == "__main__":
    main()
