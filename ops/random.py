"""Random generator ops: uniform and normal tensors (of a given shape, or shaped like an
input), Bernoulli draws and Multinomial samples.

Their values cannot be checked against a fixed oracle: ONNX leaves the generator to
each implementation. Here a node with a ``seed`` attribute draws from a numpy
``Generator`` seeded by the bits of that float32 value, so one seeded node gives the
same values on every run; without a seed each run draws fresh values. Values are
drawn in float64 and rounded to the output dtype.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .base import Attr, Decomposer, InferContext, OpDef, Param
from .registry import register


def generator(seed: float | None) -> np.random.Generator:
    """The generator of a node: seeded by the float32 bits of ``seed``, or fresh."""
    if seed is None:
        return np.random.default_rng()
    return np.random.default_rng(int(np.float32(seed).view(np.uint32)))


def output_dtype(op: str, code: int | None, like: str | None, allowed: Sequence[str]) -> str:
    """The dtype named by a ``dtype`` attribute, else ``like`` (an input's dtype)."""
    if code is None:
        dtype = like
    else:
        try:
            dtype = dt.from_onnx(int(code))
        except (KeyError, ValueError):
            raise ShapeError(f"{op} dtype {code} is not a data type of the IR") from None
    if dtype is None:
        raise ShapeError(f"{op} needs a dtype attribute or a typed input")
    if dtype not in allowed:
        raise ShapeError(f"{op} cannot produce dtype {dtype}; allowed: {', '.join(allowed)}")
    return dtype


def uniform(shape: Sequence[int], dtype: str, low: float, high: float, seed: float | None) -> np.ndarray:
    """Uniform values in [low, high) (float32 attribute values), rounded to ``dtype``;
    a value that rounds up to ``high`` becomes the dtype's next value below it."""
    low, high = float(np.float32(low)), float(np.float32(high))
    y = (low + (high - low) * generator(seed).random(tuple(shape))).astype(dtype)
    if high <= low:
        return y
    top = np.asarray(high, dtype)
    return np.where(y >= top, np.nextafter(top, np.asarray(low, dtype)), y)


def normal(shape: Sequence[int], dtype: str, mean: float, scale: float, seed: float | None) -> np.ndarray:
    """Normal values (float32 attribute values), rounded to ``dtype``."""
    draws = generator(seed).standard_normal(tuple(shape))
    return (float(np.float32(mean)) + float(np.float32(scale)) * draws).astype(dtype)


class _Generator(OpDef):
    """RandomUniform and RandomNormal: no input, the shape and dtype from attributes."""

    outputs = (Param("output", "T"),)
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext):
        shape = ctx.attrs["shape"]
        if any(int(s) < 0 for s in shape):
            raise ShapeError(f"{self.name} shape {list(shape)} has a negative dim", ctx.node.name)
        dtype = output_dtype(self.name, ctx.attrs["dtype"], None, dt.FLOATS)
        return [TensorType(dtype, tuple(int(s) for s in shape))]


class _GeneratorLike(OpDef):
    """RandomUniformLike and RandomNormalLike: the shape of the input, its dtype unless
    the dtype attribute says otherwise."""

    inputs = (Param("input", "T1"),)
    outputs = (Param("output", "T2"),)
    constraints = {"T1": dt.ALL, "T2": dt.FLOATS}

    def infer(self, ctx: InferContext):
        if ctx.attrs["dtype"] is None and ctx.dtype(0) is None:
            return [None]
        return [TensorType(output_dtype(self.name, ctx.attrs["dtype"], ctx.dtype(0), dt.FLOATS), ctx.shape(0))]


@register
class RandomUniform(_Generator):
    name = "RandomUniform"
    attrs = {"dtype": Attr("int", 1), "high": Attr("float", 1.0), "low": Attr("float", 0.0),
             "seed": Attr("float", None), "shape": Attr("ints")}

    def reference(self, *, dtype, high, low, seed, shape):
        return uniform(shape, output_dtype(self.name, dtype, None, dt.FLOATS), low, high, seed)


@register
class RandomNormal(_Generator):
    name = "RandomNormal"
    attrs = {"dtype": Attr("int", 1), "mean": Attr("float", 0.0), "scale": Attr("float", 1.0),
             "seed": Attr("float", None), "shape": Attr("ints")}

    def reference(self, *, dtype, mean, scale, seed, shape):
        return normal(shape, output_dtype(self.name, dtype, None, dt.FLOATS), mean, scale, seed)


@register
class RandomUniformLike(_GeneratorLike):
    name = "RandomUniformLike"
    attrs = {"dtype": Attr("int", None), "high": Attr("float", 1.0), "low": Attr("float", 0.0),
             "seed": Attr("float", None)}

    def reference(self, x, *, dtype, high, low, seed):
        return uniform(x.shape, output_dtype(self.name, dtype, x.dtype.name, dt.FLOATS), low, high, seed)


@register
class RandomNormalLike(_GeneratorLike):
    name = "RandomNormalLike"
    attrs = {"dtype": Attr("int", None), "mean": Attr("float", 0.0), "scale": Attr("float", 1.0),
             "seed": Attr("float", None)}

    def reference(self, x, *, dtype, mean, scale, seed):
        return normal(x.shape, output_dtype(self.name, dtype, x.dtype.name, dt.FLOATS), mean, scale, seed)


@register
class Bernoulli(OpDef):
    """1 with probability p (the input), else 0, in the dtype attribute's type (the
    input's by default). As ONNX's function body: p > RandomUniformLike(p), cast."""

    name = "Bernoulli"
    inputs = (Param("input", "T1"),)
    outputs = (Param("output", "T2"),)
    attrs = {"dtype": Attr("int", None), "seed": Attr("float", None)}
    constraints = {"T1": dt.FLOATS, "T2": dt.ALL}
    composite = True

    def infer(self, ctx: InferContext):
        if ctx.dtype(0) is None and ctx.attrs["dtype"] is None:
            return [None]
        return [TensorType(output_dtype(self.name, ctx.attrs["dtype"], ctx.dtype(0), dt.ALL), ctx.shape(0))]

    def reference(self, p, *, dtype, seed):
        out = output_dtype(self.name, dtype, p.dtype.name, dt.ALL)
        return (p > uniform(p.shape, p.dtype.name, 0.0, 1.0, seed)).astype(out)

    def decompose(self, d: Decomposer):
        p = d.inputs[0]
        seed = {} if d.attrs["seed"] is None else {"seed": d.attrs["seed"]}
        drawn = d.op("RandomUniformLike", p, dtype=dt.onnx_code(d.dtype(0)), **seed)
        out = output_dtype(self.name, d.attrs["dtype"], d.dtype(0), dt.ALL)
        d.op("Cast", d.op("Greater", p, drawn), outputs=d.outputs, to=dt.onnx_code(out))


@register
class Multinomial(OpDef):
    """sample_size class indices per row of (batch, classes) unnormalized log-probabilities,
    drawn with probabilities softmax(row)."""

    name = "Multinomial"
    inputs = (Param("input", "T1"),)
    outputs = (Param("output", "T2"),)
    attrs = {"dtype": Attr("int", 6), "sample_size": Attr("int", 1), "seed": Attr("float", None)}
    constraints = {"T1": dt.FLOATS, "T2": ("int32", "int64")}

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is not None and len(shape) != 2:
            raise ShapeError(f"Multinomial input must have rank 2 (batch, classes), got {len(shape)}", ctx.node.name)
        dtype = output_dtype(self.name, ctx.attrs["dtype"], None, self.constraints["T2"])
        return [TensorType(dtype, (None if shape is None else shape[0], int(ctx.attrs["sample_size"])))]

    def reference(self, x, *, dtype, sample_size, seed):
        out = output_dtype(self.name, dtype, None, self.constraints["T2"])
        if x.ndim != 2:
            raise ShapeError(f"Multinomial input must have rank 2 (batch, classes), got shape {list(x.shape)}")
        if sample_size < 0:
            raise ShapeError(f"Multinomial sample_size must be nonnegative, got {sample_size}")
        logits = x.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            weights = np.exp(logits - np.max(logits, axis=1, keepdims=True, initial=-np.inf))
            cdf = np.cumsum(weights, axis=1) / np.sum(weights, axis=1, keepdims=True)
        draws = generator(seed).random((x.shape[0], sample_size))
        index = np.sum(draws[:, :, np.newaxis] >= cdf[:, np.newaxis, :], axis=2)
        # a draw at or above a rounded total of 1 goes to the last class of nonzero probability
        last = x.shape[1] - 1 - np.argmax(weights[:, ::-1] > 0, axis=1) if x.shape[1] else np.zeros(x.shape[0], int)
        return np.minimum(index, last[:, np.newaxis]).astype(out)
