"""Samples for the vision ops."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays


@samples("GridSample", dt.FLOATS, {"float16": (1e-2, 2e-2)})
def grid_sample(dtype):
    @st.composite
    def draw(draw_):
        r = draw_(st.sampled_from([1, 2, 2, 3]))
        n, c = draw_(st.integers(1, 2)), draw_(st.integers(1, 2))
        sizes = tuple(draw_(st.integers(1, 4)) for _ in range(r))
        x = draw_(arrays(dtype, (n, c) + sizes, min_value=-10, max_value=10))
        out = tuple(draw_(st.integers(0 if r == 2 else 1, 3)) for _ in range(r))
        grid_dtype = draw_(st.sampled_from(dt.FLOATS))
        grid = draw_(arrays(grid_dtype, (n,) + out + (r,), special=False, min_value=-1.5, max_value=1.5))
        attrs = {"mode": draw_(st.sampled_from(["nearest", "linear", "cubic"])),
                 "padding_mode": draw_(st.sampled_from(["zeros", "border", "reflection"])),
                 "align_corners": draw_(st.sampled_from([0, 1]))}
        return Sample([x, grid], attrs)

    return draw()


@samples("NonMaxSuppression", ("float32",))
def non_max_suppression(dtype):
    @st.composite
    def draw(draw_):
        b, k, c = draw_(st.integers(1, 2)), draw_(st.integers(0, 5)), draw_(st.integers(1, 2))
        center = draw_(st.sampled_from([0, 1]))
        coords = arrays(dtype, (b, k, 4), special=False, min_value=0, max_value=4)
        boxes = draw_(coords)
        if center:
            boxes[..., 2:] = np.abs(boxes[..., 2:])
        scores = draw_(arrays(dtype, (b, c, k), special=False, min_value=0, max_value=1))
        inputs = [boxes, scores]
        optional = [np.array([draw_(st.integers(0, 4))], np.int64),
                    np.array([draw_(st.floats(0, 1, width=32))], np.float32),
                    np.array([draw_(st.floats(0, 1, width=32))], np.float32)]
        inputs += optional[:draw_(st.integers(0, 3))]
        return Sample(inputs, {"center_point_box": center})

    return draw()


@samples("LpPool", dt.FLOATS)
def lp_pool(dtype):
    @st.composite
    def draw(draw_):
        r = draw_(st.integers(1, 3))
        sizes = tuple(draw_(st.integers(1, 6)) for _ in range(r))
        x = draw_(arrays(dtype, (draw_(st.integers(1, 2)), draw_(st.integers(1, 2))) + sizes,
                         special=False, min_value=-4, max_value=4))
        kernel = [draw_(st.integers(1, s)) for s in sizes]
        attrs = {"kernel_shape": kernel, "p": draw_(st.integers(1, 3))}
        if draw_(st.booleans()):
            attrs["strides"] = [draw_(st.integers(1, 2)) for _ in range(r)]
        if draw_(st.booleans()):
            attrs["dilations"] = [draw_(st.integers(1, 2)) if k * 2 - 1 <= s else 1 for k, s in zip(kernel, sizes)]
        if draw_(st.booleans()):
            attrs["ceil_mode"] = 1
        if draw_(st.booleans()):
            attrs["pads"] = [draw_(st.integers(0, k - 1)) for k in kernel] * 2
        elif draw_(st.booleans()):
            attrs["auto_pad"] = draw_(st.sampled_from(["SAME_UPPER", "SAME_LOWER", "VALID"]))
            attrs.pop("ceil_mode", None)  # ceil_mode applies to explicit pads only
        return Sample([x], attrs)

    return draw()


@samples("MaxUnpool", dt.FLOATS)
def max_unpool(dtype):
    @st.composite
    def draw(draw_):
        r = draw_(st.integers(1, 3))
        kernel = [draw_(st.integers(1, 3)) for _ in range(r)]
        strides = [draw_(st.integers(1, 3)) for _ in range(r)]
        begin = [draw_(st.integers(0, k - 1)) for k in kernel]
        pads = begin + [draw_(st.integers(0, k - 1 - b)) for k, b in zip(kernel, begin)]
        x = draw_(arrays(dtype, (draw_(st.integers(1, 2)), draw_(st.integers(1, 2)))
                         + tuple(draw_(st.integers(1, 3)) for _ in range(r))))
        # each unpooled dim is at least as long as the pooled one, so X fits
        shape = list(x.shape[:2]) + [(d - 1) * s - pads[i] - pads[i + r] + k
                                     for i, (d, s, k) in enumerate(zip(x.shape[2:], strides, kernel))]
        flat = draw_(st.lists(st.integers(0, int(np.prod(shape)) - 1), min_size=x.size, max_size=x.size,
                              unique=True))
        inputs = [x, np.array(flat, np.int64).reshape(x.shape)]
        if draw_(st.booleans()):
            inputs.append(np.array(shape[:2] + [d + draw_(st.integers(0, 2)) for d in shape[2:]], np.int64))
        return Sample(inputs, {"kernel_shape": kernel, "strides": strides, "pads": pads})

    return draw()


@samples("AffineGrid", dt.FLOATS)
def affine_grid(dtype):
    @st.composite
    def draw(draw_):
        r = draw_(st.sampled_from([2, 3]))
        n = draw_(st.integers(1, 2))
        size = [n, draw_(st.integers(1, 3))] + [draw_(st.integers(1, 4)) for _ in range(r)]
        theta = draw_(arrays(dtype, (n, r, r + 1), special=False, min_value=-2, max_value=2))
        return Sample([theta, np.array(size, np.int64)], {"align_corners": draw_(st.sampled_from([0, 1]))})

    return draw()


@samples("RoiAlign", dt.FLOATS, {"float16": (1e-2, 2e-2)})
def roi_align(dtype):
    @st.composite
    def draw(draw_):
        n, c = draw_(st.integers(1, 2)), draw_(st.integers(1, 2))
        x = draw_(arrays(dtype, (n, c, draw_(st.integers(1, 5)), draw_(st.integers(1, 5))),
                         special=False, min_value=-10, max_value=10))
        k = draw_(st.integers(0, 3))
        corners = draw_(arrays(dtype, (k, 2, 2), special=False, min_value=-1, max_value=6))
        rois = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=1)
        batch = draw_(arrays("int64", (k,), min_value=0, max_value=n - 1))
        attrs = {"coordinate_transformation_mode": draw_(st.sampled_from(["half_pixel", "output_half_pixel"])),
                 "mode": draw_(st.sampled_from(["avg", "max"])), "output_height": draw_(st.integers(1, 3)),
                 "output_width": draw_(st.integers(1, 3)), "sampling_ratio": draw_(st.integers(0, 2)),
                 "spatial_scale": draw_(st.sampled_from([1.0, 0.5, 2.0]))}
        return Sample([x, rois, batch], attrs)

    return draw()


@samples("MaxRoiPool", dt.FLOATS)
def max_roi_pool(dtype):
    @st.composite
    def draw(draw_):
        n, c = draw_(st.integers(1, 2)), draw_(st.integers(1, 2))
        x = draw_(arrays(dtype, (n, c, draw_(st.integers(1, 5)), draw_(st.integers(1, 5))),
                         special=False, min_value=-10, max_value=10))
        k = draw_(st.integers(0, 3))
        corners = draw_(arrays(dtype, (k, 2, 2), special=False, min_value=-1, max_value=6))
        batch = draw_(arrays(dtype, (k, 1), min_value=0, max_value=n - 1, special=False)).round()
        rois = np.concatenate([batch, corners.min(axis=1), corners.max(axis=1)], axis=1)
        attrs = {"pooled_shape": [draw_(st.integers(1, 3)), draw_(st.integers(1, 3))],
                 "spatial_scale": draw_(st.sampled_from([1.0, 0.5, 2.0]))}
        return Sample([x, rois], attrs)

    return draw()


def encode_pnm(pixels: np.ndarray) -> bytes:
    """A binary PPM (RGB, (h, w, 3)) or PGM ((h, w)) file of uint8 pixels."""
    magic = b"P6" if pixels.ndim == 3 else b"P5"
    return magic + f"\n{pixels.shape[1]} {pixels.shape[0]}\n255\n".encode() + pixels.tobytes()


def encode_bmp(pixels: np.ndarray) -> bytes:
    """An uncompressed 24-bit BMP file of (h, w, 3) uint8 RGB pixels (rows bottom-up,
    BGR, each row padded to 4 bytes)."""
    h, w = pixels.shape[:2]
    row = (3 * w + 3) // 4 * 4
    body = np.zeros((h, row), np.uint8)
    body[:, :3 * w] = pixels[::-1, :, ::-1].reshape(h, 3 * w)
    header = b"BM" + np.array([54 + body.size, 0, 54], "<u4").tobytes()
    info = np.array([40, w, h], "<i4").tobytes() + np.array([1, 24], "<u2").tobytes() + \
        np.array([0, body.size, 2835, 2835, 0, 0], "<u4").tobytes()
    return header + info + body.tobytes()


@samples("ImageDecoder", ("uint8",))
def image_decoder(dtype):
    """PPM, PGM and BMP streams built here from random pixels (1 to 6 on a side), and
    streams that are no image (an empty result); every pixel format."""

    @st.composite
    def draw(draw_):
        h, w = draw_(st.integers(1, 6)), draw_(st.integers(1, 6))
        kind = draw_(st.sampled_from(["ppm", "pgm", "bmp", "garbage"]))
        if kind == "garbage":
            stream = b"not an image: " + draw_(st.binary(max_size=20))
        else:
            pixels = draw_(arrays("uint8", (h, w) if kind == "pgm" else (h, w, 3)))
            stream = encode_bmp(pixels) if kind == "bmp" else encode_pnm(pixels)
        attrs = {"pixel_format": draw_(st.sampled_from(["RGB", "BGR", "Grayscale"]))}
        return Sample([np.frombuffer(stream, np.uint8).copy()], attrs)

    return draw()
