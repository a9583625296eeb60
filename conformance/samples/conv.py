"""Samples for convolution and pooling: Conv, ConvTranspose, MaxPool, AveragePool and
the global pools. Batch 1-2, channels 1-4, spatial sizes up to 7 over 1-3 axes.

Conv values are finite, as for MatMul: GEMM kernels that skip zero multiplicands, and
kernels that dilate weights with zeros, disagree about 0 * inf while being right."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt
from dh_core.ops.conv import effective_kernel, output_size, resolve_pads

from . import Sample, samples
from .linalg import values

CONV_TOLERANCE = {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5), "float64": (1e-9, 1e-10)}


@st.composite
def _geometry(draw, rank: int | None = None):
    """Kernel, strides, dilations and explicit pads (pads < effective kernel) over
    ``rank`` spatial axes (1 to 3 when None)."""
    rank = draw(st.integers(1, 3)) if rank is None else rank

    def per_axis(lo: int, hi: int):
        return st.lists(st.integers(lo, hi), min_size=rank, max_size=rank)

    kernel, strides, dilations = draw(per_axis(1, 3)), draw(per_axis(1, 2)), draw(per_axis(1, 2))
    pads = [min(draw(st.integers(0, 2)), effective_kernel(k, d) - 1) for k, d in zip(kernel * 2, dilations * 2)]
    return kernel, strides, dilations, pads


def _sizes(draw, kernel, dilations, pads, auto_pad: str, max_side: int) -> list[int]:
    """Spatial sizes for which at least one window fits."""
    sizes = []
    n = len(kernel)
    for i in range(n):
        extra = pads[i] + pads[i + n] if auto_pad == "NOTSET" else 0
        lo = 1 if auto_pad.startswith("SAME") else max(1, effective_kernel(kernel[i], dilations[i]) - extra)
        sizes.append(draw(st.integers(lo, max(lo, max_side))))
    return sizes


def _geometry_attrs(draw, kernel, strides, dilations, pads, auto_pad: str) -> dict:
    """The attributes of a geometry, leaving out some of those equal to their defaults."""
    attrs = {}
    if auto_pad != "NOTSET" or draw(st.booleans()):
        attrs["auto_pad"] = auto_pad
    if auto_pad == "NOTSET" and (any(pads) or draw(st.booleans())):
        attrs["pads"] = pads
    if any(s != 1 for s in strides) or draw(st.booleans()):
        attrs["strides"] = strides
    if any(d != 1 for d in dilations) or draw(st.booleans()):
        attrs["dilations"] = dilations
    return attrs


@samples("Conv", dt.FLOATS, CONV_TOLERANCE)
def conv(dtype):
    @st.composite
    def draw(draw_):
        kernel, strides, dilations, pads = draw_(_geometry())
        auto_pad = draw_(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
        max_side = 7 if len(kernel) < 3 else 4
        sizes = _sizes(draw_, kernel, dilations, pads, auto_pad, max_side)
        group = draw_(st.integers(1, 4))
        c = group * draw_(st.integers(1, 4 // group))
        m = group * draw_(st.integers(1, 4 // group))
        n = draw_(st.integers(1, 2))
        x = draw_(values(dtype, (n, c, *sizes), bound=2, special=False))
        w = draw_(values(dtype, (m, c // group, *kernel), bound=2, special=False))
        inputs = [x, w] + ([draw_(values(dtype, (m,), bound=2, special=False))] if draw_(st.booleans()) else [])
        attrs = _geometry_attrs(draw_, kernel, strides, dilations, pads, auto_pad)
        if group != 1 or draw_(st.booleans()):
            attrs["group"] = group
        if draw_(st.booleans()):
            attrs["kernel_shape"] = kernel
        return Sample(inputs, attrs)

    return draw()


@samples("DeformConv", dt.FLOATS, CONV_TOLERANCE)
def deform_conv(dtype):
    """Mostly 2-D (the common case), also 1-D and 3-D; offsets up to 2.5 pixels either way,
    so that taps land between pixels and outside the input; offset groups, conv groups,
    optional bias and mask."""

    @st.composite
    def draw(draw_):
        kernel, strides, dilations, pads = draw_(_geometry(2 if draw_(st.integers(0, 3)) else None))
        k = len(kernel)
        sizes = [max(2, s) for s in _sizes(draw_, kernel, dilations, pads, "NOTSET", 4 if k < 3 else 3)]
        out = [output_size(sizes[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + k]) for i in range(k)]
        group, offset_group = draw_(st.integers(1, 2)), draw_(st.integers(1, 2))
        c = int(np.lcm(group, offset_group)) * draw_(st.integers(1, 2))
        m = group * draw_(st.integers(1, 2))
        n = draw_(st.integers(1, 2))
        taps = int(np.prod(kernel))
        x = draw_(values(dtype, (n, c, *sizes), bound=2, special=False))
        w = draw_(values(dtype, (m, c // group, *kernel), bound=2, special=False))
        offset = draw_(values(dtype, (n, offset_group * taps * k, *out), bound=2.5, special=False))
        bias = draw_(values(dtype, (m,), bound=2, special=False)) if draw_(st.booleans()) else None
        mask = (draw_(values(dtype, (n, offset_group * taps, *out), bound=1, special=False, nonnegative=True))
                if draw_(st.booleans()) else None)
        attrs = _geometry_attrs(draw_, kernel, strides, dilations, pads, "NOTSET")
        attrs.pop("auto_pad", None)
        if group != 1 or draw_(st.booleans()):
            attrs["group"] = group
        if offset_group != 1 or draw_(st.booleans()):
            attrs["offset_group"] = offset_group
        if draw_(st.booleans()):
            attrs["kernel_shape"] = kernel
        return Sample([x, w, offset, bias, mask], attrs)

    return draw()


@samples("ConvTranspose", dt.FLOATS, CONV_TOLERANCE)
def conv_transpose(dtype):
    @st.composite
    def draw(draw_):
        kernel, strides, dilations, pads = draw_(_geometry())
        mode = draw_(st.sampled_from(["pads", "pads", "output_shape", "SAME_UPPER", "SAME_LOWER", "VALID"]))
        n_sp = len(kernel)
        max_side = 5 if n_sp < 3 else 3
        sizes = [draw_(st.integers(1, max_side)) for _ in range(n_sp)]
        out_pad = [draw_(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dilations)]
        group = draw_(st.integers(1, 4))
        c = group * draw_(st.integers(1, 4 // group))
        m = group * draw_(st.integers(1, 4 // group))
        n = draw_(st.integers(1, 2))
        x = draw_(values(dtype, (n, c, *sizes), bound=2, special=False))
        w = draw_(values(dtype, (c, m // group, *kernel), bound=2, special=False))
        inputs = [x, w] + ([draw_(values(dtype, (m,), bound=2, special=False))] if draw_(st.booleans()) else [])
        auto_pad = mode if mode in ("SAME_UPPER", "SAME_LOWER", "VALID") else "NOTSET"
        full = [s * (i - 1) + p + effective_kernel(k, d)
                for s, i, p, k, d in zip(strides, sizes, out_pad, kernel, dilations)]
        for i in range(n_sp):  # keep at least one output element
            pads[i] = min(pads[i], full[i] - 1)
            pads[i + n_sp] = min(pads[i + n_sp], full[i] - 1 - pads[i])
        attrs = _geometry_attrs(draw_, kernel, strides, dilations, pads if mode == "pads" else [0] * 2 * n_sp,
                                auto_pad)
        if any(out_pad) or draw_(st.booleans()):
            attrs["output_padding"] = out_pad
        if mode == "output_shape":
            attrs["output_shape"] = [max(1, f - draw_(st.integers(0, 2))) for f in full]
        if group != 1 or draw_(st.booleans()):
            attrs["group"] = group
        if draw_(st.booleans()):
            attrs["kernel_shape"] = kernel
        return Sample(inputs, attrs)

    return draw()


def _every_window_sees_input(sizes, kernel, strides, dilations, pads, ceil_mode) -> bool:
    """Whether each pooling window covers at least one element of the input."""
    n = len(kernel)
    for i in range(n):
        out = output_size(sizes[i], kernel[i], strides[i], dilations[i], pads[i], pads[i + n], ceil_mode)
        for o in range(out):
            taps = range(o * strides[i] - pads[i], o * strides[i] - pads[i] + kernel[i] * dilations[i], dilations[i])
            if not any(0 <= t < sizes[i] for t in taps):
                return False
    return True


@st.composite
def _pool_case(draw, dtype: str):
    """(x, attrs) of a MaxPool/AveragePool call in which every window sees the input.

    Values are finite here: ONNX leaves the order of NaN in max and the result of an
    all-padding window to implementations; callers add infinities."""
    kernel, strides, dilations, pads = draw(_geometry())
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    ceil_mode = auto_pad == "NOTSET" and draw(st.booleans())
    max_side = 7 if len(kernel) < 3 else 4
    sizes = _sizes(draw, kernel, dilations, pads, auto_pad, max_side)
    real_pads = resolve_pads(auto_pad, sizes, kernel, strides, dilations, pads)
    if not _every_window_sees_input(sizes, kernel, strides, dilations, real_pads, ceil_mode):
        # unpadded windows always start inside the input
        auto_pad, pads = "NOTSET", [0] * len(pads)
        sizes = [max(s, effective_kernel(k, d)) for s, k, d in zip(sizes, kernel, dilations)]
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), *sizes)
    x = draw(values(dtype, shape, bound=100, special=False))
    attrs = _geometry_attrs(draw, kernel, strides, dilations, pads, auto_pad)
    attrs["kernel_shape"] = kernel
    if ceil_mode or draw(st.booleans()):
        attrs["ceil_mode"] = int(ceil_mode)
    return x, attrs


@samples("MaxPool", dt.FLOATS + ("int8", "uint8"))
def max_pool(dtype):
    @st.composite
    def draw(draw_):
        x, attrs = draw_(_pool_case(dtype))
        if np.dtype(dtype).kind == "f" and x.size and draw_(st.booleans()):
            x.flat[draw_(st.integers(0, x.size - 1))] = draw_(st.sampled_from([np.inf, -np.inf]))
        if draw_(st.booleans()):
            attrs["storage_order"] = draw_(st.integers(0, 1))
        return Sample([x], attrs, n_outputs=draw_(st.integers(1, 2)))

    return draw()


@samples("AveragePool", dt.FLOATS, {"float16": (1e-2, 1e-3), "float32": (1e-5, 1e-5)})
def average_pool(dtype):
    @st.composite
    def draw(draw_):
        x, attrs = draw_(_pool_case(dtype))
        if x.size and draw_(st.booleans()):
            x.flat[draw_(st.integers(0, x.size - 1))] = draw_(st.sampled_from([np.inf, -np.inf]))
        if draw_(st.booleans()):
            attrs["count_include_pad"] = draw_(st.integers(0, 1))
        return Sample([x], attrs)

    return draw()


def _global(dtype: str):
    @st.composite
    def draw(draw_):
        spatial = draw_(st.lists(st.integers(1, 4), min_size=1, max_size=3))
        shape = (draw_(st.integers(1, 2)), draw_(st.integers(1, 4)), *spatial)
        return Sample([draw_(values(dtype, shape, bound=100))])

    return draw()


samples("GlobalAveragePool", dt.FLOATS, {"float16": (1e-2, 1e-3), "float32": (1e-5, 1e-5)})(
    _global)
samples("GlobalMaxPool", dt.FLOATS)(_global)
