"""ConvTranspose, Resize, DepthToSpace and LpPool layers on the OpenCL backend against the CPU backend.

    python benchmarks/opencl_upsample.py [--repeat 5] [--device opencl:0]

As benchmarks/opencl_conv.py: one-node graphs with initializer weights and scales, the
median of each backend and their ratio (cpu / opencl: above 1 means faster)."""
from __future__ import annotations

import numpy as np
from opencl_conv import main


def scales(*values: float) -> list:
    """Resize's inputs after X: no roi, these scales."""
    return [np.zeros(0, np.float32), np.array(values, np.float32)]


LAYERS = [  # (label, op, input shape, constants, attributes)
    ("convtranspose 4x4/2 64->32 28x28", "ConvTranspose", (1, 64, 28, 28), [(64, 32, 4, 4), (32,)],
     {"strides": [2, 2], "pads": [1, 1, 1, 1]}),
    ("convtranspose 2x2/2 128->64 14x14", "ConvTranspose", (2, 128, 14, 14), [(128, 64, 2, 2)], {"strides": [2, 2]}),
    ("convtranspose depthwise 3x3/2 32", "ConvTranspose", (1, 32, 28, 28), [(32, 1, 3, 3)],
     {"strides": [2, 2], "group": 32}),
    ("resize nearest x2 64 56x56", "Resize", (1, 64, 56, 56), scales(1, 1, 2, 2), {"mode": "nearest"}),
    ("resize linear x2 64 56x56", "Resize", (1, 64, 56, 56), scales(1, 1, 2, 2), {"mode": "linear"}),
    ("resize cubic x0.5 32 112x112", "Resize", (1, 32, 112, 112), scales(1, 1, 0.5, 0.5), {"mode": "cubic"}),
    ("depthtospace 2 256 28x28", "DepthToSpace", (1, 256, 28, 28), [], {"blocksize": 2}),
    ("lppool p2 3x3/2 64 56x56", "LpPool", (1, 64, 56, 56), [], {"kernel_shape": [3, 3], "strides": [2, 2]}),
]


if __name__ == "__main__":
    main(LAYERS, __doc__)
