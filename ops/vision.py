"""Vision ops: detection, region pooling, sampling grids, image decoding."""
from __future__ import annotations

import io
import itertools
import math

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import MissingDependencyError, ShapeError
from dh_core.ir import TensorType

from .base import Attr, InferContext, OpDef, Param
from .conv import _pool_infer, _pool_windows
from .registry import register

Types = list[TensorType | None]


# -- sampling grids ------------------------------------------------------------------------
def reflect(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Coordinates folded back into [lo, hi] by reflecting off its ends, as often as needed."""
    span = hi - lo
    if span <= 0:
        return np.full_like(x, lo)
    below, above = lo - x, x - hi
    dist = np.where(x < lo, below, above)
    bounces = np.floor(dist / span)
    rest = dist - bounces * span
    even = bounces % 2 == 0
    from_below = np.where(even, lo + rest, hi - rest)
    from_above = np.where(even, hi - rest, lo + rest)
    return np.where(x < lo, from_below, np.where(x > hi, from_above, x))


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys' cubic convolution weights (a = -0.75) of the taps at -1, 0, 1, 2 from floor(x)."""
    a = -0.75

    def near(d):
        return ((a + 2) * d - (a + 3)) * d * d + 1

    def far(d):
        return ((a * d - 5 * a) * d + 8 * a) * d - 4 * a

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _grid_taps(x: np.ndarray, mode: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(index, weight) of each tap for source coordinates ``x`` along one axis."""
    if mode == "nearest":
        return [(np.trunc(x).astype(np.int64), np.ones_like(x))]
    base = np.floor(x)
    t = x - base
    if mode == "linear":
        offsets, weights = (0, 1), [1 - t, t]
    else:
        offsets, weights = (-1, 0, 1, 2), _cubic_weights(t)
    return [(base.astype(np.int64) + o, w) for o, w in zip(offsets, weights)]


def _fetch_index(index: np.ndarray, size: int, padding_mode: str, bounds: tuple[float, float]):
    """A tap's index inside the axis, and where it counts (False: a zero pad)."""
    if padding_mode == "zeros":
        valid = (index >= 0) & (index < size)
        return np.clip(index, 0, size - 1), valid
    if padding_mode == "border":
        return np.clip(index, 0, size - 1), None
    folded = np.trunc(reflect(index.astype(np.float64), *bounds)).astype(np.int64)
    return np.clip(folded, 0, size - 1), None


@register
class GridSample(OpDef):
    name = "GridSample"
    inputs = (Param("X", "T1"), Param("grid", "T2"))
    outputs = (Param("Y", "T1"),)
    attrs = {"align_corners": Attr("int", 0), "mode": Attr("string", "linear"),
             "padding_mode": Attr("string", "zeros")}
    constraints = {"T1": dt.FLOATS, "T2": dt.FLOATS}

    def infer(self, ctx: InferContext) -> Types:
        x, grid, dtype = ctx.shape(0), ctx.shape(1), ctx.dtype(0)
        if dtype is None:
            return [None]
        if x is None or grid is None:
            return [TensorType(dtype, None)]
        return [TensorType(dtype, (grid[0], x[1]) + tuple(grid[1:-1]))]

    def reference(self, x, grid, *, align_corners, mode, padding_mode):
        """Samples X at the grid's normalized coordinates ([-1, 1] spans the input;
        the grid's last axis lists them innermost axis first)."""
        sizes = x.shape[2:]
        r = len(sizes)
        if grid.shape[-1] != r or grid.ndim != r + 2 or grid.shape[0] != x.shape[0]:
            raise ShapeError(f"GridSample grid {list(grid.shape)} does not fit input {list(x.shape)}")
        if mode not in ("nearest", "linear", "cubic") or padding_mode not in ("zeros", "border", "reflection"):
            raise ShapeError(f"GridSample mode '{mode}' or padding_mode '{padding_mode}' is unknown")
        axes_taps = []
        for i, size in enumerate(sizes):
            g = grid[..., r - 1 - i]  # denormalized in the grid's dtype
            if align_corners:
                pos, bounds = (g + 1) / 2 * (size - 1), (0.0, size - 1.0)
            else:
                pos, bounds = ((g + 1) * size - 1) / 2, (-0.5, size - 0.5)
            pos = pos.astype(np.float64)
            if mode == "nearest":
                pos = np.rint(pos)
            outside = (pos < bounds[0]) | (pos > bounds[1])
            if padding_mode == "border":
                pos = np.where(outside, np.clip(pos, 0, size - 1), pos)
            elif padding_mode == "reflection":
                pos = np.where(outside, reflect(pos, *bounds), pos)
            taps = []
            for index, weight in _grid_taps(pos, mode):
                where, valid = _fetch_index(index, size, padding_mode, bounds)
                taps.append((where, weight, valid))
            axes_taps.append(taps)
        batch = np.arange(x.shape[0]).reshape((-1,) + (1,) * r)
        data = x.astype(np.float64)
        out = np.zeros(grid.shape[:-1] + (x.shape[1],), np.float64)
        for combo in itertools.product(*axes_taps):
            weight = np.ones(grid.shape[:-1])
            valid = np.ones(grid.shape[:-1], bool)
            for _, w, v in combo:
                weight = weight * w
                if v is not None:
                    valid &= v
            values = data[(batch, slice(None)) + tuple(where for where, _, _ in combo)]
            values = np.where(valid[..., None], values, 0.0)
            out += weight[..., None] * values
        return np.moveaxis(out, -1, 1).astype(x.dtype)


# -- detection -------------------------------------------------------------------------------
def _corners(boxes: np.ndarray, center_point_box: int) -> tuple[np.ndarray, ...]:
    """(x_min, x_max, y_min, y_max) of boxes given as corners or centre and size."""
    if center_point_box:
        half_w, half_h = boxes[:, 2] / 2, boxes[:, 3] / 2
        return boxes[:, 0] - half_w, boxes[:, 0] + half_w, boxes[:, 1] - half_h, boxes[:, 1] + half_h
    return (np.minimum(boxes[:, 1], boxes[:, 3]), np.maximum(boxes[:, 1], boxes[:, 3]),
            np.minimum(boxes[:, 0], boxes[:, 2]), np.maximum(boxes[:, 0], boxes[:, 2]))


def _overlaps(corners, i: int, chosen: list[int], iou_threshold) -> bool:
    """Whether box ``i`` overlaps one of the chosen boxes by more than the IoU threshold."""
    if not chosen:
        return False
    x0, x1, y0, y1 = corners
    c = np.array(chosen)
    ix = np.minimum(x1[i], x1[c]) - np.maximum(x0[i], x0[c])
    iy = np.minimum(y1[i], y1[c]) - np.maximum(y0[i], y0[c])
    inter = ix * iy
    area_i = (x1[i] - x0[i]) * (y1[i] - y0[i])
    area_c = (x1[c] - x0[c]) * (y1[c] - y0[c])
    union = area_i + area_c - inter
    counts = (ix > 0) & (iy > 0) & (inter > 0) & (area_i > 0) & (area_c > 0) & (union > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return bool(np.any(counts & (inter / np.where(counts, union, 1) > iou_threshold)))


@register
class NonMaxSuppression(OpDef):
    name = "NonMaxSuppression"
    inputs = (Param("boxes", "float32"), Param("scores", "float32"),
              Param("max_output_boxes_per_class", "int64", optional=True),
              Param("iou_threshold", "float32", optional=True),
              Param("score_threshold", "float32", optional=True))
    outputs = (Param("selected_indices", "int64"),)
    attrs = {"center_point_box": Attr("int", 0)}

    def infer(self, ctx: InferContext) -> Types:
        return [TensorType("int64", (None, 3))]

    def reference(self, boxes, scores, max_output_boxes_per_class=None, iou_threshold=None,
                  score_threshold=None, *, center_point_box):
        """Per batch and class, greedily keeps the best-scoring boxes (ties: lower index)
        that overlap no kept box by more than ``iou_threshold``; rows are
        (batch, class, box)."""
        limit = 0 if max_output_boxes_per_class is None or not max_output_boxes_per_class.size else max(
            int(max_output_boxes_per_class.reshape(-1)[0]), 0)
        iou = np.float32(0 if iou_threshold is None or not iou_threshold.size else iou_threshold.reshape(-1)[0])
        selected = []
        for b in range(boxes.shape[0]):
            corners = _corners(boxes[b], center_point_box)
            for c in range(scores.shape[1]):
                s = scores[b, c]
                order = np.argsort(-s.astype(np.float64), kind="stable")
                if score_threshold is not None and score_threshold.size:
                    order = order[s[order] > score_threshold.reshape(-1)[0]]
                chosen: list[int] = []
                for i in order:
                    if len(chosen) >= limit:
                        break
                    if not _overlaps(corners, int(i), chosen, iou):
                        chosen.append(int(i))
                selected += [(b, c, i) for i in chosen]
        return np.array(selected, dtype=np.int64).reshape(-1, 3)


# -- pooling ------------------------------------------------------------------------------------
@register
class LpPool(OpDef):
    name = "LpPool"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    attrs = {"auto_pad": Attr("string", "NOTSET"), "ceil_mode": Attr("int", 0), "dilations": Attr("ints", None),
             "kernel_shape": Attr("ints"), "p": Attr("int", 2), "pads": Attr("ints", None),
             "strides": Attr("ints", None)}
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext) -> Types:
        return [_pool_infer(ctx, ctx.dtype(0))]

    def reference(self, x, *, auto_pad, ceil_mode, dilations, kernel_shape, p, pads, strides):
        """The p-norm of each window, pads counting as zeros."""
        attrs = {"auto_pad": auto_pad, "ceil_mode": ceil_mode, "dilations": dilations,
                 "kernel_shape": kernel_shape, "pads": pads, "strides": strides}
        win = _pool_windows(np.abs(x.astype(np.float64)), attrs, 0)
        total = np.zeros(x.shape[:2] + tuple(win.out), np.float64)
        for window in win.slices:
            total += win.padded[(slice(None), slice(None)) + window] ** p
        return (total ** (1.0 / p)).astype(x.dtype)


def unpool_shape(x_shape, kernel: list[int], pads: list[int] | None, strides: list[int] | None) -> tuple:
    """MaxUnpool's default output shape: the input of the MaxPool that it inverts."""
    n = len(kernel)
    pads = [0] * 2 * n if pads is None else pads
    strides = [1] * n if strides is None else strides
    spatial = tuple(None if not isinstance(d, int) else (d - 1) * strides[i] - pads[i] - pads[i + n] + kernel[i]
                    for i, d in enumerate(x_shape[2:]))
    return tuple(x_shape[:2]) + spatial


@register
class MaxUnpool(OpDef):
    name = "MaxUnpool"
    inputs = (Param("X", "T1"), Param("I", "T2"), Param("output_shape", "T2", optional=True))
    outputs = (Param("output", "T1"),)
    attrs = {"kernel_shape": Attr("ints"), "pads": Attr("ints", None), "strides": Attr("ints", None)}
    constraints = {"T1": dt.FLOATS, "T2": ("int64",)}

    def infer(self, ctx: InferContext) -> Types:
        dtype, shape, given = ctx.dtype(0), ctx.shape(0), ctx.value(2)
        if dtype is None:
            return [None]
        if given is not None:
            return [TensorType(dtype, tuple(int(d) for d in given.reshape(-1)))]
        if ctx.has(2) or shape is None:
            return [TensorType(dtype, None if shape is None else (None,) * len(shape))]
        return [TensorType(dtype, unpool_shape(shape, list(ctx.attrs["kernel_shape"]), ctx.attrs["pads"],
                                               ctx.attrs["strides"]))]

    def reference(self, x, indices, output_shape=None, *, kernel_shape, pads, strides):
        """Scatters X to the flat positions I of the pooled-from shape (MaxPool's
        indices), zeros elsewhere; a larger output_shape pads that at the ends."""
        shape = unpool_shape(x.shape, list(kernel_shape), pads, strides)
        if indices.shape != x.shape:
            raise ShapeError(f"MaxUnpool indices {list(indices.shape)} differ from X {list(x.shape)}")
        flat = np.zeros(math.prod(shape), x.dtype)
        flat[_checked(indices.reshape(-1), flat.size)] = x.reshape(-1)
        if output_shape is None:
            return flat.reshape(shape)
        target = tuple(int(d) for d in output_shape.reshape(-1))
        if len(target) != len(shape) or any(t < s for t, s in zip(target, shape)):
            raise ShapeError(f"MaxUnpool output_shape {list(target)} is smaller than {list(shape)}")
        out = np.zeros(target, x.dtype)
        out[tuple(slice(0, s) for s in shape)] = flat.reshape(shape)
        return out


def _checked(indices: np.ndarray, size: int) -> np.ndarray:
    if indices.size and (indices.min() < 0 or indices.max() >= size):
        raise ShapeError(f"MaxUnpool index out of range for {size} elements")
    return indices


# -- affine grids ----------------------------------------------------------------------------------
def _base_coords(size: int, align_corners: int) -> np.ndarray:
    """Normalized coordinates of an axis's pixels: corners at +-1, or pixel centres."""
    if align_corners:
        return np.linspace(-1.0, 1.0, size)
    return (np.arange(size) * 2 + 1) / size - 1


@register
class AffineGrid(OpDef):
    name = "AffineGrid"
    inputs = (Param("theta", "T1"), Param("size", "T2"))
    outputs = (Param("grid", "T1"),)
    attrs = {"align_corners": Attr("int", 0)}
    constraints = {"T1": dt.FLOATS, "T2": ("int64",)}

    def infer(self, ctx: InferContext) -> Types:
        dtype, size, theta = ctx.dtype(0), ctx.value(1), ctx.shape(0)
        if dtype is None:
            return [None]
        if size is not None:
            size = [int(s) for s in size.reshape(-1)]
            return [TensorType(dtype, (size[0], *size[2:], len(size) - 2))]
        n = ctx.shape(1)
        if n is None or not isinstance(n[0], int):
            return [TensorType(dtype, None)]
        batch = None if theta is None else theta[0]
        return [TensorType(dtype, (batch,) + (None,) * (n[0] - 2) + (n[0] - 2,))]

    def reference(self, theta, size, *, align_corners):
        """Grids of normalized sampling coordinates (innermost axis first) for GridSample:
        theta (N, r, r + 1) applied to each output pixel's (x, y, [z,] 1)."""
        size = [int(s) for s in size.reshape(-1)]
        spatial = size[2:]
        r = len(spatial)
        if theta.shape != (size[0], r, r + 1):
            raise ShapeError(f"AffineGrid theta {list(theta.shape)} does not fit size {size}")
        axes = np.meshgrid(*[_base_coords(s, align_corners) for s in spatial], indexing="ij")
        homogeneous = np.stack(list(axes[::-1]) + [np.ones(spatial)], axis=-1)
        grid = np.einsum("...k,nik->n...i", homogeneous, theta.astype(np.float64))
        return grid.astype(theta.dtype)


# -- region pooling ------------------------------------------------------------------------------
def _roi_axis(samples: np.ndarray, size: int) -> tuple[np.ndarray, ...]:
    """Bilinear taps of sample coordinates along one axis: (outside, low, high, low weight,
    high weight); coordinates below 0 clamp to 0 and past the last pixel to it."""
    outside = (samples < -1.0) | (samples > size)
    pos = np.maximum(samples, 0.0)
    low = np.trunc(pos).astype(np.int64)
    at_end = low >= size - 1
    low = np.where(at_end, size - 1, low)
    high = np.where(at_end, size - 1, low + 1)
    pos = np.where(at_end, low, pos)
    frac = pos - low
    return outside, low, high, 1.0 - frac, frac


def _roi_tap(img: np.ndarray, keep: np.ndarray, yi: np.ndarray, xi: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """One bilinear corner's weighted pixels; samples outside the image weigh pixel (0, 0) by 0."""
    return np.where(keep, weight, 0.0) * img[:, np.where(keep, yi, 0), np.where(keep, xi, 0)]


@register
class RoiAlign(OpDef):
    name = "RoiAlign"
    inputs = (Param("X", "T1"), Param("rois", "T1"), Param("batch_indices", "T2"))
    outputs = (Param("Y", "T1"),)
    attrs = {"coordinate_transformation_mode": Attr("string", "half_pixel"), "mode": Attr("string", "avg"),
             "output_height": Attr("int", 1), "output_width": Attr("int", 1), "sampling_ratio": Attr("int", 0),
             "spatial_scale": Attr("float", 1.0)}
    constraints = {"T1": dt.FLOATS, "T2": ("int64",)}

    def infer(self, ctx: InferContext) -> Types:
        dtype, x, rois = ctx.dtype(0), ctx.shape(0), ctx.shape(1)
        if dtype is None:
            return [None]
        return [TensorType(dtype, (None if rois is None else rois[0], None if x is None else x[1],
                                   ctx.attrs["output_height"], ctx.attrs["output_width"]))]

    def reference(self, x, rois, batch_indices, *, coordinate_transformation_mode, mode, output_height,
                  output_width, sampling_ratio, spatial_scale):
        """Pools each region of interest into an output_height x output_width grid of
        bins, averaging (or taking the largest weighted tap of) bilinear samples."""
        if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 4 or batch_indices.shape != (rois.shape[0],):
            raise ShapeError(f"RoiAlign needs X (N, C, H, W), rois (R, 4) and batch_indices (R,); got "
                             f"{list(x.shape)}, {list(rois.shape)}, {list(batch_indices.shape)}")
        half_pixel = coordinate_transformation_mode == "half_pixel"
        height, width = x.shape[2:]
        data = x.astype(np.float64)
        out = np.zeros((rois.shape[0], x.shape[1], output_height, output_width), np.float64)
        for r, (roi, b) in enumerate(zip(rois.astype(np.float64), batch_indices)):
            start_w, start_h, end_w, end_h = roi * spatial_scale - (0.5 if half_pixel else 0.0)
            roi_w, roi_h = end_w - start_w, end_h - start_h
            if not half_pixel:
                roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
            bin_h, bin_w = roi_h / output_height, roi_w / output_width
            grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / output_height))
            grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / output_width))
            ys = start_h + np.arange(output_height)[:, None] * bin_h + (np.arange(grid_h) + 0.5) * bin_h / grid_h
            xs = start_w + np.arange(output_width)[:, None] * bin_w + (np.arange(grid_w) + 0.5) * bin_w / grid_w
            y_out, y0, y1, hy, ly = (a[:, :, None, None] for a in _roi_axis(ys, height))
            x_out, x0, x1, hx, lx = (a[None, None] for a in _roi_axis(xs, width))
            keep = ~(y_out | x_out)
            img = data[int(b)]
            taps = [_roi_tap(img, keep, yi, xi, w)
                    for yi, xi, w in ((y0, x0, hy * hx), (y0, x1, hy * lx), (y1, x0, ly * hx), (y1, x1, ly * lx))]
            if mode == "avg":
                out[r] = sum(taps).sum(axis=(2, 4)) / max(grid_h * grid_w, 1)
            elif mode == "max":
                best = np.maximum.reduce(taps)
                if best.size:
                    out[r] = best.max(axis=(2, 4))
            else:
                raise ShapeError(f"RoiAlign mode '{mode}' is unknown")
        return out.astype(x.dtype)


def _round_half_away(v: float) -> int:
    return int(np.sign(v) * np.floor(abs(v) + 0.5))


@register
class MaxRoiPool(OpDef):
    name = "MaxRoiPool"
    inputs = (Param("X", "T"), Param("rois", "T"))
    outputs = (Param("Y", "T"),)
    attrs = {"pooled_shape": Attr("ints"), "spatial_scale": Attr("float", 1.0)}
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext) -> Types:
        dtype, x, rois = ctx.dtype(0), ctx.shape(0), ctx.shape(1)
        if dtype is None:
            return [None]
        pooled = ctx.attrs.get("pooled_shape") or (None, None)
        return [TensorType(dtype, (None if rois is None else rois[0], None if x is None else x[1], *pooled))]

    def reference(self, x, rois, *, pooled_shape, spatial_scale):
        """Max over each bin of each region (batch, x1, y1, x2, y2), whose corners are
        scaled and rounded to pixels; an empty bin gives 0."""
        if x.ndim != 4 or rois.ndim != 2 or rois.shape[1] != 5 or len(pooled_shape) != 2:
            raise ShapeError(f"MaxRoiPool needs X (N, C, H, W), rois (R, 5) and a 2-D pooled_shape; got "
                             f"{list(x.shape)}, {list(rois.shape)}, {list(pooled_shape)}")
        pooled_h, pooled_w = pooled_shape
        height, width = x.shape[2:]
        out = np.zeros((rois.shape[0], x.shape[1], pooled_h, pooled_w), x.dtype)
        for r, roi in enumerate(rois.astype(np.float64)):
            start_w, start_h, end_w, end_h = (_round_half_away(v * spatial_scale) for v in roi[1:])
            bin_h = max(end_h - start_h + 1, 1) / pooled_h
            bin_w = max(end_w - start_w + 1, 1) / pooled_w
            for ph, pw in itertools.product(range(pooled_h), range(pooled_w)):
                h0 = min(max(int(np.floor(ph * bin_h)) + start_h, 0), height)
                h1 = min(max(int(np.ceil((ph + 1) * bin_h)) + start_h, 0), height)
                w0 = min(max(int(np.floor(pw * bin_w)) + start_w, 0), width)
                w1 = min(max(int(np.ceil((pw + 1) * bin_w)) + start_w, 0), width)
                if h1 > h0 and w1 > w0:
                    out[r, :, ph, pw] = x[int(roi[0]), :, h0:h1, w0:w1].max(axis=(1, 2))
        return out


PIXEL_FORMATS = {"RGB": 3, "BGR": 3, "Grayscale": 1}
"""ImageDecoder's pixel formats and their channel counts."""


@register
class ImageDecoder(OpDef):
    """Decodes an encoded image (BMP, JPEG, JPEG 2000, TIFF, PNG, WebP, PBM/PGM/PPM) from a
    1-D uint8 stream into (height, width, channels): RGB, BGR or Grayscale (1 channel,
    ITU-R 601-2 luma). A stream that cannot be decoded gives an empty (0, 0, channels)
    image, as ONNX says. Decoding uses Pillow (the optional ``image`` extra); JPEG
    chroma upsampling is libjpeg's "fancy" method, as ONNX specifies."""

    name = "ImageDecoder"
    inputs = (Param("encoded_stream", "T1"),)
    outputs = (Param("image", "T2"),)
    attrs = {"pixel_format": Attr("string", "RGB")}
    constraints = {"T1": ("uint8",), "T2": ("uint8",)}

    @staticmethod
    def _channels(pixel_format: str, node: str | None = None) -> int:
        if pixel_format not in PIXEL_FORMATS:
            raise ShapeError(f"ImageDecoder pixel_format must be one of {', '.join(PIXEL_FORMATS)}, "
                             f"got '{pixel_format}'", node)
        return PIXEL_FORMATS[pixel_format]

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is not None and len(shape) != 1:
            raise ShapeError(f"ImageDecoder encoded_stream must have rank 1, got {len(shape)}", ctx.node.name)
        return [TensorType("uint8", (None, None, self._channels(ctx.attrs["pixel_format"], ctx.node.name)))]

    def reference(self, encoded, *, pixel_format):
        channels = self._channels(pixel_format)
        if encoded.ndim != 1:
            raise ShapeError(f"ImageDecoder encoded_stream must have rank 1, got shape {list(encoded.shape)}")
        try:
            from PIL import Image, UnidentifiedImageError
        except ImportError:
            raise MissingDependencyError("ImageDecoder", "pillow", "image") from None
        try:
            with Image.open(io.BytesIO(encoded.tobytes())) as img:
                decoded = np.asarray(img.convert("L" if channels == 1 else "RGB"), np.uint8)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
            return np.zeros((0, 0, channels), np.uint8)
        decoded = decoded.reshape(decoded.shape[0], decoded.shape[1], channels)
        return np.ascontiguousarray(decoded[:, :, ::-1]) if pixel_format == "BGR" else decoded
