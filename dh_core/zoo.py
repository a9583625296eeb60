"""Real-architecture models written with the builder, with random weights.

Used by the benchmarks and the conformance suite's model checks; no download needed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .builder import GraphBuilder
from .ir import Graph


def _conv_bn(b: GraphBuilder, rng, x: str, c_in: int, c_out: int, k: int, stride: int, relu: bool) -> str:
    w = b.constant((rng.standard_normal((c_out, c_in, k, k)) * np.sqrt(2.0 / (c_in * k * k))).astype(np.float32))
    y = b.Conv(x, w, kernel_shape=[k, k], strides=[stride, stride], pads=[k // 2] * 4)
    scale = b.constant(rng.uniform(0.5, 1.5, c_out).astype(np.float32))
    bias = b.constant(rng.uniform(-0.1, 0.1, c_out).astype(np.float32))
    mean = b.constant(rng.uniform(-0.1, 0.1, c_out).astype(np.float32))
    var = b.constant(rng.uniform(0.5, 1.5, c_out).astype(np.float32))
    y = b.BatchNormalization(y, scale, bias, mean, var, epsilon=1e-5)
    return b.Relu(y) if relu else y


def resnet(blocks: Sequence[int] = (2, 2, 2, 2), width: int = 64, num_classes: int = 1000,
           image: int = 224, seed: int = 0) -> Graph:
    """A ResNet with basic blocks (``(2, 2, 2, 2)`` and width 64 is ResNet-18).

    Input ``"input"``: float32 [N, 3, image, image]; output ``"logits"``: [N, classes].
    """
    rng = np.random.default_rng(seed)
    b = GraphBuilder(f"resnet{2 * sum(blocks) + 2}")
    x = b.input("input", "float32", ("N", 3, image, image))
    y = _conv_bn(b, rng, x, 3, width, 7, 2, relu=True)
    y = b.MaxPool(y, kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    c_in = width
    for stage, count in enumerate(blocks):
        c_out = width * 2 ** stage
        for i in range(count):
            stride = 2 if stage > 0 and i == 0 else 1
            h = _conv_bn(b, rng, y, c_in, c_out, 3, stride, relu=True)
            h = _conv_bn(b, rng, h, c_out, c_out, 3, 1, relu=False)
            shortcut = y if stride == 1 and c_in == c_out else _conv_bn(b, rng, y, c_in, c_out, 1, stride, relu=False)
            y = b.Relu(b.Add(h, shortcut))
            c_in = c_out
    y = b.Flatten(b.GlobalAveragePool(y), axis=1)
    w = b.constant((rng.standard_normal((num_classes, c_in)) / np.sqrt(c_in)).astype(np.float32))
    bias = b.constant(np.zeros(num_classes, np.float32))
    b.output(b.Gemm(y, w, bias, transB=1, outputs=["logits"]))
    return b.build()


def mlp(sizes: Sequence[int] = (64, 128, 128, 10), seed: int = 0) -> Graph:
    """A multilayer perceptron: MatMul+Add+Relu layers, Softmax at the end.

    Input ``"x"``: float32 [N, sizes[0]]; output ``"probs"``: [N, sizes[-1]]."""
    rng = np.random.default_rng(seed)
    b = GraphBuilder("mlp")
    y = b.input("x", "float32", ("N", sizes[0]))
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = b.constant((rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32))
        bias = b.constant(rng.uniform(-0.1, 0.1, n_out).astype(np.float32))
        y = b.Add(b.MatMul(y, w), bias)
        if i < len(sizes) - 2:
            y = b.Relu(y)
    b.output(b.Softmax(y, axis=-1, outputs=["probs"]))
    return b.build()
