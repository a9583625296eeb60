"""Conv, pooling and normalization layers on the OpenCL backend against the CPU backend.

    python benchmarks/opencl_conv.py [--repeat 5] [--device opencl:0]

Each layer is a one-node graph with its weights as initializers; the OpenCL time runs
on device buffers and waits for the queue, so it counts kernels, not host copies.
Prints the median of each backend and their ratio (cpu / opencl: above 1 means faster).
"""
from __future__ import annotations

import argparse

import numpy as np
from _common import header, median_seconds

from dh_core.backend import Device
from dh_core.builder import GraphBuilder
from dh_core import backends

RNG = np.random.default_rng(0)

LAYERS = [  # (label, op, input shape, constant shapes, attributes)
    ("conv 3x3 64->64 56x56", "Conv", (1, 64, 56, 56), [(64, 64, 3, 3), (64,)], {"pads": [1, 1, 1, 1]}),
    ("conv 3x3/2 3->64 224x224", "Conv", (1, 3, 224, 224), [(64, 3, 7, 7)], {"pads": [3, 3, 3, 3], "strides": [2, 2]}),
    ("conv 1x1 256->64 56x56", "Conv", (1, 256, 56, 56), [(64, 256, 1, 1)], {}),
    ("conv 3x3 batch 8 32->32 28x28", "Conv", (8, 32, 28, 28), [(32, 32, 3, 3)], {"pads": [1, 1, 1, 1]}),
    ("conv 3x3 group 4 64->64 28x28", "Conv", (1, 64, 28, 28), [(64, 16, 3, 3)], {"pads": [1, 1, 1, 1], "group": 4}),
    ("depthwise 3x3 128 56x56", "Conv", (1, 128, 56, 56), [(128, 1, 3, 3)], {"pads": [1, 1, 1, 1], "group": 128}),
    ("maxpool 3x3/2 64 112x112", "MaxPool", (1, 64, 112, 112), [],
     {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("averagepool 3x3 64 56x56", "AveragePool", (1, 64, 56, 56), [], {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}),
    ("global average 512 7x7", "GlobalAveragePool", (8, 512, 7, 7), [], {}),
    ("batchnorm 64 112x112", "BatchNormalization", (1, 64, 112, 112), [(64,)] * 4, {}),
    ("instancenorm 64 56x56", "InstanceNormalization", (1, 64, 56, 56), [(64,), (64,)], {}),
    ("layernorm 512x768", "LayerNormalization", (512, 768), [(768,), (768,)], {}),
    ("lrn 5 96 55x55", "LRN", (1, 96, 55, 55), [], {"size": 5}),
]


def layer_graph(op: str, x_shape, constant_shapes, attrs):
    """A one-node graph; each constant is an array, or a shape to fill with random floats."""
    b = GraphBuilder(op)
    x = b.input("x", "float32", x_shape)
    constants = [b.constant(s if isinstance(s, np.ndarray) else RNG.uniform(0.5, 1.5, s).astype(np.float32))
                 for s in constant_shapes]
    b.output(b.node(op, x, *constants, outputs=1, **attrs))
    return b.build()


def compare_layers(layers, repeat: int, device_name: str) -> None:
    """Print the median time of each layer on the CPU and OpenCL backends and their ratio."""
    opencl, cpu = backends.get("opencl"), backends.get("cpu")
    device = Device(device_name)
    header(f"OpenCL layers on {device_name}: {opencl.describe()[device.index]}")
    print(f"{'layer':32} {'cpu ms':>9} {'opencl ms':>10} {'cpu/opencl':>11}")
    for label, op, x_shape, constant_shapes, attrs in layers:
        graph = layer_graph(op, x_shape, constant_shapes, attrs)
        x = RNG.standard_normal(x_shape).astype(np.float32)
        on_cpu = cpu.compile(graph, Device("cpu"))
        on_device = opencl.compile(graph, device)
        x_device = opencl.to_device(x, device)
        queue = opencl.runtime(device).queue

        def device_run():
            on_device.run([x_device])
            queue.finish()

        cpu_median, _ = median_seconds(lambda: on_cpu.run([x]), repeat)
        device_median, _ = median_seconds(device_run, repeat)
        print(f"{label:32} {cpu_median * 1e3:9.2f} {device_median * 1e3:10.2f} {cpu_median / device_median:11.2f}")


def main(layers=LAYERS, description: str = __doc__) -> None:
    """The command line of this script and of others that time their own ``layers``."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="opencl:0")
    args = parser.parse_args()
    compare_layers(layers, args.repeat, args.device)

if __name__ == "__main__":
    main()
