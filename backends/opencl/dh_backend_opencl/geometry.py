"""Window geometry shared by the Conv and pooling kernels: every spatial rank (1 to 3)
is padded to three axes with leading axes of size 1, so one kernel serves them all."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dh_core.ops.conv import output_size, resolve_pads, spatial_attr

SPATIAL = 3
"""Spatial axes the kernels see."""


@dataclass(frozen=True)
class Windows:
    """Sizes of one call, each padded to :data:`SPATIAL` axes."""

    sizes: tuple[int, ...]
    kernel: tuple[int, ...]
    out: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]

    @classmethod
    def resolve(cls, sizes: Sequence[int], kernel: Sequence[int], attrs: dict, ceil_mode: bool = False) -> Windows:
        """The geometry of a node with ``attrs`` (auto_pad, pads, strides, dilations) on
        an input with these spatial sizes."""
        n = len(kernel)
        strides = spatial_attr(attrs.get("strides"), n, 1)
        dilations = spatial_attr(attrs.get("dilations"), n, 1)
        pads = resolve_pads(attrs.get("auto_pad", "NOTSET"), sizes, kernel, strides, dilations, attrs.get("pads"))
        out = [output_size(sizes[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + n], ceil_mode)
               for i in range(n)]
        return cls.lifted(sizes, kernel, out, strides, dilations, pads)

    @classmethod
    def lifted(cls, sizes: Sequence[int], kernel: Sequence[int], out: Sequence[int], strides: Sequence[int],
               dilations: Sequence[int], pads: Sequence[int]) -> Windows:
        """Resolved geometry of ``len(kernel)`` spatial axes (pads begins then ends),
        padded to :data:`SPATIAL` axes."""
        n = len(kernel)

        def lift(values: Sequence[int], fill: int) -> tuple[int, ...]:
            return (fill,) * (SPATIAL - n) + tuple(int(v) for v in values)

        return cls(lift(sizes, 1), lift(kernel, 1), lift(out, 1), lift(strides, 1), lift(dilations, 1),
                   lift(pads[:n], 0), lift(pads[n:], 0))

    @property
    def out_size(self) -> int:
        """Output positions per (image, channel)."""
        return int(np.prod(self.out))

    @property
    def taps(self) -> int:
        """Kernel positions per channel."""
        return int(np.prod(self.kernel))

    def meta(self) -> np.ndarray:
        """The int32 vector the kernels read: sizes, kernel, out, strides, dilations,
        begin pads, end pads (three of each)."""
        return np.array(self.sizes + self.kernel + self.out + self.strides + self.dilations
                        + self.pads_begin + self.pads_end, np.int32)
