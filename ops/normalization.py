"""Normalization ops (BatchNormalization in inference mode, Instance/Layer/Group
normalization) and Softmax/LogSoftmax. All are composites.

Statistics of float16 inputs are computed in float32 (the ONNX ``stash_type`` default
for Layer/GroupNormalization; InstanceNormalization follows it for the same reason:
float16 sums of squares overflow). Variances use the two-pass form
``mean((x - mean)**2)``, which stays accurate where ``mean(x**2) - mean(x)**2`` (the
ONNX function bodies' form) cancels.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .base import Attr, Decomposer, InferContext, OpDef, Param
from .registry import register
from .shapes import broadcast, normalize_axes, normalize_axis


# -- shared pieces ---------------------------------------------------------------------
def standardize(x: np.ndarray, axes: Sequence[int], epsilon: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(normalized, mean, stddev) of x over axes, in x's dtype, keeping reduced dims."""
    axes = tuple(axes)
    mean = np.mean(x, axis=axes, keepdims=True).astype(x.dtype)
    dev = x - mean
    var = np.mean(dev * dev, axis=axes, keepdims=True).astype(x.dtype)
    std = np.sqrt(var + float_attr(epsilon, x.dtype))
    return dev / std, mean, std


def float_attr(value: float, dtype) -> np.ndarray:
    """A float attribute as ONNX stores it (float32), as a scalar of dtype."""
    return np.asarray(np.float32(value), dtype)


def stats_dtype(dtype: str) -> str:
    """The dtype statistics are computed in when there is no stash_type: float32 for float16."""
    return "float32" if dtype == "float16" else dtype


def stash_dtype(op: str, stash_type: int, allowed: Sequence[str] = dt.FLOATS) -> str:
    """The dtype named by a stash_type attribute (an ONNX element-type code)."""
    try:
        dtype = dt.from_onnx(stash_type)
    except TypeError:
        dtype = None
    if dtype not in allowed:
        raise ShapeError(f"{op} stash_type {stash_type} is not one of "
                         f"{', '.join(str(dt.onnx_code(a)) for a in allowed)} ({', '.join(allowed)})")
    return dtype


def channel_shape(rank: int) -> list[int]:
    """Reshape target that lines per-channel (C,) parameters up with axis 1 of (N, C, D1, ...)."""
    return [-1] + [1] * (rank - 2)


def _per_channel(p: np.ndarray, rank: int, dtype) -> np.ndarray:
    p = p.astype(dtype, copy=False)
    return p.reshape(channel_shape(rank)) if rank > 2 else p


def _reduce(d: Decomposer, op: str, x: str, axes: Sequence[int], outputs: int | list[str] = 1) -> str:
    """A keepdims reduction over axes (int64 input); no axes means no reduction."""
    extra = {} if axes else {"noop_with_empty_axes": 1}
    return d.op(op, x, d.const(np.array(list(axes), np.int64)), outputs=outputs, keepdims=1, **extra)


def _cast(d: Decomposer, x: str, have: str, want: str) -> str:
    return x if have == want else d.op("Cast", x, to=dt.onnx_code(want))


def _emit_in(d: Decomposer, have: str, want: str, output: str, op: str, *inputs: str) -> None:
    """Emit ``op`` computed in dtype ``have`` into ``output`` of dtype ``want`` (cast if they differ)."""
    if have == want:
        d.op(op, *inputs, outputs=[output])
    else:
        d.op("Cast", d.op(op, *inputs), to=dt.onnx_code(want), outputs=[output])


def _emit_standardize(d: Decomposer, x: str, axes: Sequence[int], epsilon: float, dtype: str,
                      mean_out: str = "") -> tuple[str, str]:
    """Emit (normalized, stddev) of x over axes; the mean goes to ``mean_out`` if named."""
    mean = _reduce(d, "ReduceMean", x, axes, outputs=[mean_out] if mean_out else 1)
    dev = d.op("Sub", x, mean)
    var = _reduce(d, "ReduceMean", d.op("Mul", dev, dev), axes)
    std = d.op("Sqrt", d.op("Add", var, d.const(float_attr(epsilon, dtype))))
    return d.op("Div", dev, std), std


def _output(d: Decomposer, i: int) -> str:
    return d.outputs[i] if i < len(d.outputs) else ""


# -- ops ---------------------------------------------------------------------------------
@register
class BatchNormalization(OpDef):
    """Y = (X - mean) / sqrt(var + epsilon) * scale + B per channel (axis 1), computed in
    the widest dtype of the inputs and cast to X's.

    Inference (training_mode=0) uses input_mean and input_var and has one output.
    Training (training_mode=1) uses the batch's own statistics over every axis but 1
    (float32 for float16 data, variance without Bessel's correction) and can output
    running_mean = input_mean * momentum + mean * (1 - momentum), running_var likewise."""

    name = "BatchNormalization"
    inputs = (Param("X", "T"), Param("scale", "T1"), Param("B", "T1"),
              Param("input_mean", "T2"), Param("input_var", "T2"))
    outputs = (Param("Y", "T"), Param("running_mean", "T2", optional=True),
               Param("running_var", "T2", optional=True))
    attrs = {"epsilon": Attr("float", 1e-5), "momentum": Attr("float", 0.9), "training_mode": Attr("int", 0)}
    constraints = {"T": dt.FLOATS, "T1": dt.FLOATS, "T2": dt.FLOATS}
    composite = True

    @staticmethod
    def _check(training_mode: int, n_outputs: int, node: str | None = None) -> None:
        if not training_mode and n_outputs > 1:
            raise ShapeError("BatchNormalization in inference mode (training_mode=0) has one output", node)

    def infer(self, ctx: InferContext):
        n = len(ctx.node.outputs)
        self._check(ctx.attrs["training_mode"], sum(1 for o in ctx.node.outputs if o), ctx.node.name)
        dtype = ctx.dtype(0)
        out = [None if dtype is None else TensorType(dtype, ctx.shape(0))]
        x = ctx.shape(0)
        channels = (x[1],) if x is not None and len(x) > 1 else None
        for i in (3, 4)[:n - 1]:
            t = ctx.types[i] if i < len(ctx.types) else None
            out.append(None if t is None else TensorType(t.dtype, t.shape if t.shape is not None else channels))
        return out

    def reference(self, x, scale, b, mean, var, *, epsilon, momentum, training_mode):
        work = np.result_type(x, scale, b, mean, var)
        r = x.ndim
        if not training_mode:
            std = np.sqrt(var.astype(work) + float_attr(epsilon, work))
            y = (x.astype(work) - _per_channel(mean, r, work)) / _per_channel(std, r, work)
            return (y * _per_channel(scale, r, work) + _per_channel(b, r, work)).astype(x.dtype)
        stat = stats_dtype(work.name)
        axes = (0, *range(2, r))
        xs = x.astype(stat)
        batch_mean = np.mean(xs, axis=axes, keepdims=True).astype(stat)
        dev = xs - batch_mean
        batch_var = np.mean(dev * dev, axis=axes, keepdims=True).astype(stat)
        y = dev / np.sqrt(batch_var + float_attr(epsilon, stat))
        y = (y * _per_channel(scale, r, stat) + _per_channel(b, r, stat)).astype(x.dtype)
        m = float_attr(momentum, stat)
        keep = np.asarray(1, stat) - m
        running_mean = mean.astype(stat) * m + batch_mean.reshape(-1) * keep
        running_var = var.astype(stat) * m + batch_var.reshape(-1) * keep
        return y, running_mean.astype(mean.dtype), running_var.astype(var.dtype)

    def decompose(self, d):
        self._check(d.attrs["training_mode"], sum(1 for o in d.outputs if o), d.node.name)
        if d.attrs["training_mode"]:
            self._decompose_training(d)
            return
        dtype, r = d.dtype(0), d.rank(0)
        work = np.result_type(*(d.dtype(i) for i in range(5))).name
        x, scale, b, mean, var = (_cast(d, d.inputs[i], d.dtype(i), work) for i in range(5))
        std = d.op("Sqrt", d.op("Add", var, d.const(float_attr(d.attrs["epsilon"], work))))
        if r > 2:
            shape = d.const(np.array(channel_shape(r), np.int64))
            scale, b, mean, std = (d.op("Reshape", p, shape) for p in (scale, b, mean, std))
        y = d.op("Div", d.op("Sub", x, mean), std)
        out = d.outputs[:1]
        if work == dtype:
            d.op("Add", d.op("Mul", y, scale), b, outputs=out)
        else:
            d.op("Cast", d.op("Add", d.op("Mul", y, scale), b), to=dt.onnx_code(dtype), outputs=out)

    @staticmethod
    def _decompose_training(d: Decomposer) -> None:
        r = d.rank(0)
        stat = stats_dtype(np.result_type(*(d.dtype(i) for i in range(5))).name)
        x, scale, b, mean, var = (_cast(d, d.inputs[i], d.dtype(i), stat) for i in range(5))
        axes = [0, *range(2, r)]
        batch_mean = _reduce(d, "ReduceMean", x, axes)
        dev = d.op("Sub", x, batch_mean)
        batch_var = _reduce(d, "ReduceMean", d.op("Mul", dev, dev), axes)
        y = d.op("Div", dev, d.op("Sqrt", d.op("Add", batch_var, d.const(float_attr(d.attrs["epsilon"], stat)))))
        if r > 2:
            shape = d.const(np.array(channel_shape(r), np.int64))
            scale, b = (d.op("Reshape", p, shape) for p in (scale, b))
        _emit_in(d, stat, d.dtype(0), d.outputs[0], "Add", d.op("Mul", y, scale), b)
        m = float_attr(d.attrs["momentum"], stat)
        momentum, keep = d.const(m), d.const(np.asarray(1, stat) - m)
        flat = d.const(np.array([-1], np.int64))
        for i, prior, batch in ((1, mean, batch_mean), (2, var, batch_var)):
            if _output(d, i):
                _emit_in(d, stat, d.dtype(2 + i), d.outputs[i], "Add", d.op("Mul", prior, momentum),
                         d.op("Mul", d.op("Reshape", batch, flat), keep))


@register
class InstanceNormalization(OpDef):
    """Y = (X - mean) / sqrt(var + epsilon) * scale + B, statistics per (N, C) over the
    spatial axes."""

    name = "InstanceNormalization"
    inputs = (Param("input", "T"), Param("scale", "T"), Param("B", "T"))
    outputs = (Param("output", "T"),)
    attrs = {"epsilon": Attr("float", 1e-5)}
    constraints = {"T": dt.FLOATS}
    composite = True

    def infer(self, ctx: InferContext):
        (dtype,) = self.output_dtypes(ctx)
        return [None if dtype is None else TensorType(dtype, ctx.shape(0))]

    def reference(self, x, scale, b, *, epsilon):
        r = x.ndim
        normalized, _, _ = standardize(x.astype(stats_dtype(x.dtype.name)), range(2, r), epsilon)
        return normalized.astype(x.dtype) * _per_channel(scale, r, x.dtype) + _per_channel(b, r, x.dtype)

    def decompose(self, d):
        dtype, r = d.dtype(0), d.rank(0)
        work = stats_dtype(dtype)
        normalized, _ = _emit_standardize(d, _cast(d, d.inputs[0], dtype, work), range(2, r),
                                          d.attrs["epsilon"], work)
        normalized = _cast(d, normalized, work, dtype)
        scale, b = d.inputs[1], d.inputs[2]
        if r > 2:
            shape = d.const(np.array(channel_shape(r), np.int64))
            scale, b = d.op("Reshape", scale, shape), d.op("Reshape", b, shape)
        d.op("Add", d.op("Mul", normalized, scale), b, outputs=d.outputs)


@register
class LayerNormalization(OpDef):
    """Standardizes over axes [axis, rank) in float32 (stash_type 1), then
    Y = normalized * Scale + B in X's dtype. Mean and InvStdDev are float32."""

    name = "LayerNormalization"
    inputs = (Param("X", "T"), Param("Scale", "T"), Param("B", "T", optional=True))
    outputs = (Param("Y", "T"), Param("Mean", "U", optional=True), Param("InvStdDev", "U", optional=True))
    attrs = {"axis": Attr("int", -1), "epsilon": Attr("float", 1e-5), "stash_type": Attr("int", 1)}
    constraints = {"T": dt.FLOATS, "U": ("float32",)}
    composite = True

    def infer(self, ctx: InferContext):
        stash = stash_dtype(self.name, ctx.attrs["stash_type"], self.constraints["U"])
        shape, dtype = ctx.shape(0), ctx.dtype(0)
        stats_shape = None
        if shape is not None:
            axis = normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
            stats_shape = tuple(shape[:axis]) + (1,) * (len(shape) - axis)
        types = [None if dtype is None else TensorType(dtype, shape),
                 TensorType(stash, stats_shape), TensorType(stash, stats_shape)]
        return types[: max(1, len(ctx.node.outputs))]

    def reference(self, x, scale, b=None, *, axis, epsilon, stash_type):
        stash = stash_dtype(self.name, stash_type, self.constraints["U"])
        axis = normalize_axis(axis, x.ndim)
        normalized, mean, std = standardize(x.astype(stash), range(axis, x.ndim), epsilon)
        y = normalized.astype(x.dtype) * scale
        if b is not None:
            y = y + b
        return y, mean, (np.asarray(1, stash) / std)

    def decompose(self, d):
        dtype, r = d.dtype(0), d.rank(0)
        stash = stash_dtype(self.name, d.attrs["stash_type"], self.constraints["U"])
        axis = normalize_axis(d.attrs["axis"], r, d.node.name)
        normalized, std = _emit_standardize(d, _cast(d, d.inputs[0], dtype, stash), range(axis, r),
                                            d.attrs["epsilon"], stash, mean_out=_output(d, 1))
        if _output(d, 2):
            d.op("Div", d.const(1, stash), std, outputs=[_output(d, 2)])
        normalized = _cast(d, normalized, stash, dtype)
        if len(d.inputs) > 2 and d.inputs[2]:
            d.op("Add", d.op("Mul", normalized, d.inputs[1]), d.inputs[2], outputs=[d.outputs[0]])
        else:
            d.op("Mul", normalized, d.inputs[1], outputs=[d.outputs[0]])


@register
class GroupNormalization(OpDef):
    """Opset-21 semantics: statistics per (N, group) over the group's channels and the
    spatial axes, computed in the stash_type dtype; then per-channel scale and bias."""

    name = "GroupNormalization"
    inputs = (Param("X", "T"), Param("scale", "T"), Param("bias", "T"))
    outputs = (Param("Y", "T"),)
    attrs = {"epsilon": Attr("float", 1e-5), "num_groups": Attr("int"), "stash_type": Attr("int", 1)}
    constraints = {"T": dt.FLOATS}
    composite = True

    @staticmethod
    def _check_groups(channels, groups: int, node: str | None = None) -> None:
        if groups < 1 or (isinstance(channels, int) and channels % groups):
            raise ShapeError(f"GroupNormalization: {channels} channels do not split into {groups} groups", node)

    def infer(self, ctx: InferContext):
        stash_dtype(self.name, ctx.attrs["stash_type"])
        shape = ctx.shape(0)
        if shape is not None and len(shape) >= 2:
            self._check_groups(shape[1], ctx.attrs["num_groups"], ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [None if dtype is None else TensorType(dtype, shape)]

    def reference(self, x, scale, bias, *, epsilon, num_groups, stash_type):
        stash = stash_dtype(self.name, stash_type)
        n, c = x.shape[:2]
        self._check_groups(c, num_groups)
        grouped = x.astype(stash).reshape(n, num_groups, -1)
        normalized, _, _ = standardize(grouped, [2], epsilon)
        normalized = normalized.reshape(x.shape).astype(x.dtype)
        return normalized * _per_channel(scale, x.ndim, x.dtype) + _per_channel(bias, x.ndim, x.dtype)

    def decompose(self, d):
        dtype, r = d.dtype(0), d.rank(0)
        groups = d.attrs["num_groups"]
        stash = stash_dtype(self.name, d.attrs["stash_type"])
        x = _cast(d, d.inputs[0], dtype, stash)
        grouped = d.op("Reshape", x, d.const(np.array([0, groups, -1], np.int64)))
        normalized, _ = _emit_standardize(d, grouped, [2], d.attrs["epsilon"], stash)
        normalized = d.op("Reshape", normalized, d.op("Shape", d.inputs[0]))
        normalized = _cast(d, normalized, stash, dtype)
        scale, bias = d.inputs[1], d.inputs[2]
        if r > 2:
            shape = d.const(np.array(channel_shape(r), np.int64))
            scale, bias = d.op("Reshape", scale, shape), d.op("Reshape", bias, shape)
        d.op("Add", d.op("Mul", normalized, scale), bias, outputs=d.outputs)


class _SoftmaxBase(OpDef):
    """Opset-13 semantics: along one axis (default -1), stabilized by subtracting the max."""

    inputs = (Param("input", "T"),)
    outputs = (Param("output", "T"),)
    attrs = {"axis": Attr("int", -1)}
    constraints = {"T": dt.FLOATS}
    composite = True

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is not None:
            normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [None if dtype is None else TensorType(dtype, shape)]

    @staticmethod
    def _shifted(x: np.ndarray, axis: int) -> tuple[np.ndarray, int]:
        """x minus its max along axis, and the normalized axis."""
        axis = normalize_axis(axis, x.ndim)
        if x.shape[axis] == 0:
            return x.copy(), axis
        return x - np.max(x, axis=axis, keepdims=True), axis

    def _emit_shifted_exp(self, d) -> tuple[str, str, list[int]]:
        """Emit x - max(x) and its exp; returns (shifted, exp, axes)."""
        axes = [normalize_axis(d.attrs["axis"], d.rank(0), d.node.name)]
        shifted = d.op("Sub", d.inputs[0], _reduce(d, "ReduceMax", d.inputs[0], axes))
        return shifted, d.op("Exp", shifted), axes


@register
class Softmax(_SoftmaxBase):
    name = "Softmax"

    def reference(self, x, *, axis):
        shifted, axis = self._shifted(x, axis)
        e = np.exp(shifted)
        return e / np.sum(e, axis=axis, keepdims=True)

    def decompose(self, d):
        _, e, axes = self._emit_shifted_exp(d)
        d.op("Div", e, _reduce(d, "ReduceSum", e, axes), outputs=d.outputs)


@register
class LogSoftmax(_SoftmaxBase):
    name = "LogSoftmax"

    def reference(self, x, *, axis):
        shifted, axis = self._shifted(x, axis)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))

    def decompose(self, d):
        shifted, e, axes = self._emit_shifted_exp(d)
        d.op("Sub", shifted, d.op("Log", _reduce(d, "ReduceSum", e, axes)), outputs=d.outputs)


@register
class RMSNormalization(OpDef):
    """Opset-23 semantics: Y = X / sqrt(mean(X**2) + epsilon) * scale, the mean over axes
    [axis, rank) computed in the stash_type dtype (float32 by default)."""

    name = "RMSNormalization"
    inputs = (Param("X", "T"), Param("scale", "V"))
    outputs = (Param("Y", "V"),)
    attrs = {"axis": Attr("int", -1), "epsilon": Attr("float", 1e-5), "stash_type": Attr("int", 1)}
    constraints = {"T": dt.FLOATS, "V": dt.FLOATS}
    composite = True

    def infer(self, ctx: InferContext):
        stash_dtype(self.name, ctx.attrs["stash_type"])
        shape = ctx.shape(0)
        if shape is not None:
            normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
        dtype = ctx.dtype(1)
        return [None if dtype is None else TensorType(dtype, broadcast(shape, ctx.shape(1), node=ctx.node.name))]

    def reference(self, x, scale, *, axis, epsilon, stash_type):
        stash = stash_dtype(self.name, stash_type)
        axes = tuple(range(normalize_axis(axis, x.ndim), x.ndim))
        xs = x.astype(stash)
        mean_square = np.mean(xs * xs, axis=axes, keepdims=True).astype(stash)
        normalized = xs / np.sqrt(mean_square + float_attr(epsilon, stash))
        return normalized.astype(scale.dtype) * scale

    def decompose(self, d):
        dtype, r = d.dtype(0), d.rank(0)
        stash = stash_dtype(self.name, d.attrs["stash_type"])
        axes = range(normalize_axis(d.attrs["axis"], r, d.node.name), r)
        x = _cast(d, d.inputs[0], dtype, stash)
        mean_square = _reduce(d, "ReduceMean", d.op("Mul", x, x), axes)
        rms = d.op("Sqrt", d.op("Add", mean_square, d.const(float_attr(d.attrs["epsilon"], stash))))
        normalized = _cast(d, d.op("Div", x, rms), stash, d.dtype(1))
        d.op("Mul", normalized, d.inputs[1], outputs=d.outputs)


@register
class MeanVarianceNormalization(OpDef):
    """ONNX's function body: Y = (X - E[X]) / (sqrt(E[X**2] - E[X]**2) + 1e-9), the
    expectations over ``axes``, in X's dtype."""

    name = "MeanVarianceNormalization"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    attrs = {"axes": Attr("ints", [0, 2, 3])}
    constraints = {"T": dt.FLOATS}
    composite = True
    EPSILON = 1e-9

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is not None:
            normalize_axes(ctx.attrs["axes"], len(shape), ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [None if dtype is None else TensorType(dtype, shape)]

    def reference(self, x, *, axes):
        axes = tuple(normalize_axes(axes, x.ndim))
        mean = np.mean(x, axis=axes, keepdims=True).astype(x.dtype)
        mean_of_square = np.mean(x * x, axis=axes, keepdims=True).astype(x.dtype)
        std = np.sqrt(mean_of_square - mean * mean)
        return (x - mean) / (std + float_attr(self.EPSILON, x.dtype))

    def decompose(self, d):
        dtype = d.dtype(0)
        axes = normalize_axes(d.attrs["axes"], d.rank(0), d.node.name)
        x = d.inputs[0]
        mean = _reduce(d, "ReduceMean", x, axes)
        mean_of_square = _reduce(d, "ReduceMean", d.op("Mul", x, x), axes)
        std = d.op("Sqrt", d.op("Sub", mean_of_square, d.op("Mul", mean, mean)))
        denominator = d.op("Add", std, d.const(float_attr(self.EPSILON, dtype)))
        d.op("Div", d.op("Sub", x, mean), denominator, outputs=d.outputs)


class _SameShape(OpDef):
    """A float op whose output has its input's dtype and shape."""

    inputs = (Param("input", "T"),)
    outputs = (Param("output", "T"),)
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is not None and "axis" in ctx.attrs:
            normalize_axis(ctx.attrs["axis"], len(shape), ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [None if dtype is None else TensorType(dtype, shape)]


@register
class Hardmax(_SameShape):
    """Opset-13 semantics: 1 at the first maximum along ``axis`` (a nan counts as the
    maximum), 0 elsewhere."""

    name = "Hardmax"
    attrs = {"axis": Attr("int", -1)}

    def reference(self, x, *, axis):
        axis = normalize_axis(axis, x.ndim)
        y = np.zeros_like(x)
        if x.size:
            np.put_along_axis(y, np.expand_dims(np.argmax(x, axis=axis), axis), 1, axis=axis)
        return y


@register
class LpNormalization(_SameShape):
    """X / ||X||_p along ``axis`` (p 1 or 2); 0 where the norm is 0."""

    name = "LpNormalization"
    attrs = {"axis": Attr("int", -1), "p": Attr("int", 2)}

    def infer(self, ctx: InferContext):
        self._check_p(ctx.attrs["p"], ctx.node.name)
        return super().infer(ctx)

    @staticmethod
    def _check_p(p: int, node: str | None = None) -> None:
        if p not in (1, 2):
            raise ShapeError(f"LpNormalization supports p 1 and 2, got {p}", node)

    def reference(self, x, *, axis, p):
        self._check_p(p)
        axis = normalize_axis(axis, x.ndim)
        magnitude = np.abs(x) if p == 1 else x * x
        norm = np.sum(magnitude, axis=axis, keepdims=True).astype(x.dtype)
        if p == 2:
            norm = np.sqrt(norm)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(norm == 0, np.zeros((), x.dtype), x / norm)


@register
class LRN(OpDef):
    """Local response normalization across channels (axis 1):
    Y = X / (bias + alpha / size * sum of X**2 over the channel window) ** beta, the
    window [c - floor((size-1)/2), c + ceil((size-1)/2)]; float16 is computed in float32."""

    name = "LRN"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    attrs = {"alpha": Attr("float", 1e-4), "beta": Attr("float", 0.75), "bias": Attr("float", 1.0),
             "size": Attr("int")}
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is not None and len(shape) < 2:
            raise ShapeError(f"LRN needs an input of rank >= 2, got rank {len(shape)}", ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [None if dtype is None else TensorType(dtype, shape)]

    def reference(self, x, *, alpha, beta, bias, size):
        work = stats_dtype(x.dtype.name)
        xs = x.astype(work)
        squares = xs * xs
        channels = x.shape[1]
        before, after = (size - 1) // 2, size // 2
        padded = np.pad(squares, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
        window_sum = sum(padded[:, i:i + channels] for i in range(size))
        scale = float_attr(bias, work) + float_attr(alpha, work) / np.asarray(size, work) * window_sum
        return (xs / scale ** float_attr(beta, work)).astype(x.dtype)


@register
class RotaryEmbedding(OpDef):
    """Rotary positional embedding (opset 23): the first rotary_embedding_dim features of each
    head (all by default), split in halves (or interleaved pairs) (x1, x2), become
    (x1 cos - x2 sin, x1 sin + x2 cos); cos/sin come from the caches, indexed by position_ids
    when given. X is (batch, heads, seq, head) or (batch, seq, heads * head) with num_heads."""

    name = "RotaryEmbedding"
    inputs = (Param("X", "T"), Param("cos_cache", "T"), Param("sin_cache", "T"),
              Param("position_ids", "M", optional=True))
    outputs = (Param("Y", "T"),)
    attrs = {"interleaved": Attr("int", 0), "num_heads": Attr("int", None), "rotary_embedding_dim": Attr("int", 0)}
    constraints = {"T": ("float16", "float32"), "M": ("int64",)}

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is not None and len(shape) not in (3, 4):
            raise ShapeError(f"RotaryEmbedding X must have rank 3 or 4, got {len(shape)}", ctx.node.name)
        if shape is not None and len(shape) == 3 and not ctx.attrs["num_heads"]:
            raise ShapeError("RotaryEmbedding needs num_heads for a rank-3 X", ctx.node.name)
        (dtype,) = self.output_dtypes(ctx)
        return [None if dtype is None else TensorType(dtype, shape)]

    def reference(self, x, cos_cache, sin_cache, position_ids=None, *, interleaved, num_heads,
                  rotary_embedding_dim):
        if x.ndim == 4:
            heads = x.transpose(0, 2, 1, 3)
        elif x.ndim == 3 and num_heads:
            heads = x.reshape(x.shape[0], x.shape[1], num_heads, x.shape[2] // num_heads)
        else:
            raise ShapeError(f"RotaryEmbedding X must have rank 4, or rank 3 with num_heads; got shape "
                             f"{list(x.shape)}")
        rot = rotary_embedding_dim or heads.shape[3]
        if position_ids is not None:
            cos_cache, sin_cache = cos_cache[position_ids], sin_cache[position_ids]
        if cos_cache.shape[-1] != rot // 2 or sin_cache.shape[-1] != rot // 2:
            raise ShapeError(f"RotaryEmbedding caches must have {rot // 2} features, got "
                             f"{cos_cache.shape[-1]} and {sin_cache.shape[-1]}")
        cos, sin = cos_cache[:, :, np.newaxis], sin_cache[:, :, np.newaxis]
        y = heads.copy()
        first, second = (slice(0, rot, 2), slice(1, rot, 2)) if interleaved else (
            slice(0, rot // 2), slice(rot // 2, rot))
        x1, x2 = heads[..., first], heads[..., second]
        y[..., first] = cos * x1 - sin * x2
        y[..., second] = sin * x1 + cos * x2
        return y.transpose(0, 2, 1, 3) if x.ndim == 4 else y.reshape(x.shape)


def _allowed_bias(allowed: np.ndarray, dtype) -> np.ndarray:
    """0 where attention is allowed, -inf where it is masked, in dtype."""
    return np.where(allowed, np.zeros((), dtype), np.asarray(-np.inf, dtype))


def _offset_diff(q_len: int, kv_len: int, offset) -> np.ndarray:
    """(query position + offset) - key position: (q, kv), or (batch, 1, q, kv) when the
    offset is per batch."""
    i = np.arange(q_len)[:, np.newaxis]
    j = np.arange(kv_len)[np.newaxis, :]
    if np.ndim(offset):
        return (i + np.reshape(offset, (-1, 1, 1, 1))) - j
    return i + int(offset) - j


@register
class Attention(OpDef):
    """Scaled dot-product attention (opset 24+ semantics): softmax(Q K^T * scale + bias) V,
    with Q and K each pre-scaled by sqrt(scale). The bias gathers the attention mask
    (bool: -inf where False; padded with masked keys up to the total length), a causal
    mask and a sliding window (both aligned to the end of past_key, or per batch to
    nonpad_kv_seqlen), and the key padding from nonpad_kv_seqlen. Rows masked
    entirely give 0. K/V heads repeat for grouped-query attention. 3-D inputs are
    (batch, seq, heads * head) with q_num_heads/kv_num_heads."""

    name = "Attention"
    inputs = (Param("Q", "T1"), Param("K", "T1"), Param("V", "T2"), Param("attn_mask", "U", optional=True),
              Param("past_key", "T1", optional=True), Param("past_value", "T2", optional=True),
              Param("nonpad_kv_seqlen", "int64", optional=True))
    outputs = (Param("Y", "T1"), Param("present_key", "T1", optional=True),
               Param("present_value", "T2", optional=True), Param("qk_matmul_output", "T1", optional=True))
    attrs = {"is_causal": Attr("int", 0), "kv_num_heads": Attr("int", None), "q_num_heads": Attr("int", None),
             "qk_matmul_output_mode": Attr("int", 0), "scale": Attr("float", None), "softcap": Attr("float", 0.0),
             "softmax_precision": Attr("int", None), "left_window_size": Attr("int", -1),
             "right_window_size": Attr("int", -1)}
    constraints = {"T1": dt.FLOATS, "T2": dt.FLOATS, "U": dt.ALL}

    @staticmethod
    def _check(ranks, attrs, has_past: tuple[bool, bool], has_nonpad: bool, node: str | None = None) -> None:
        if attrs["left_window_size"] < -1 or attrs["right_window_size"] < -1:
            raise ShapeError("Attention window sizes must be -1 or nonnegative", node)
        if has_past[0] != has_past[1]:
            raise ShapeError("Attention needs past_key and past_value together", node)
        if has_nonpad and has_past[0]:
            raise ShapeError("Attention cannot combine nonpad_kv_seqlen with past_key/past_value", node)
        known = {r for r in ranks if r is not None}
        if len(known) > 1 or not known <= {3, 4}:
            raise ShapeError(f"Attention Q, K and V must all have rank 3 or all rank 4, got {ranks}", node)
        heads = attrs["q_num_heads"], attrs["kv_num_heads"]
        if known == {4} and any(h is not None for h in heads):
            raise ShapeError("Attention takes q_num_heads/kv_num_heads for 3-D inputs only", node)
        if known == {3} and not all(heads):
            raise ShapeError("Attention needs q_num_heads and kv_num_heads for 3-D inputs", node)

    def infer(self, ctx: InferContext):
        a = ctx.attrs
        self._check([ctx.shape(i) and len(ctx.shape(i)) for i in range(3)], a, (ctx.has(4), ctx.has(5)),
                    ctx.has(6), ctx.node.name)
        q, k, v = (ctx.shape(i) for i in range(3))
        t1, t2 = ctx.dtype(0), ctx.dtype(2)
        past = ctx.shape(4) if ctx.has(4) else None
        if q is None or k is None or v is None or (ctx.has(4) and past is None):
            y = kv_key = kv_value = scores = None
        else:
            past_len = past[2] if past is not None else 0
            total = k[1 if len(k) == 3 else 2]
            total = total + past_len if isinstance(total, int) and isinstance(past_len, int) else None
            if len(q) == 4:
                y = (q[0], q[1], q[2], v[3])
                kv_key, kv_value = (k[0], k[1], total, k[3]), (v[0], v[1], total, v[3])
                scores = (q[0], q[1], q[2], total)
            else:
                hq, hkv = a["q_num_heads"], a["kv_num_heads"]
                dv = v[2] // hkv if isinstance(v[2], int) else None
                dk = k[2] // hkv if isinstance(k[2], int) else None
                y = (q[0], q[1], None if dv is None else hq * dv)
                kv_key, kv_value = (k[0], hkv, total, dk), (v[0], hkv, total, dv)
                scores = (q[0], hq, q[1], total)
        types = [TensorType(t1, y) if t1 else None, TensorType(t1, kv_key) if t1 else None,
                 TensorType(t2, kv_value) if t2 else None, TensorType(t1, scores) if t1 else None]
        return types[: max(1, len(ctx.node.outputs))]

    @staticmethod
    def _heads(x: np.ndarray, heads: int) -> np.ndarray:
        """(batch, seq, heads * head) -> (batch, heads, seq, head)."""
        return x.reshape(x.shape[0], x.shape[1], heads, x.shape[2] // heads).transpose(0, 2, 1, 3)

    def _bias(self, mask, q_len: int, kv_len: int, dtype, offset, causal: bool, windows) -> np.ndarray:
        """The additive bias from the mask, the causal rule and the sliding window."""
        bias = np.zeros((q_len, kv_len), dtype)
        if mask is not None:
            pad = kv_len - mask.shape[-1]
            if pad > 0:
                fill = False if mask.dtype == np.bool_ else -np.inf
                mask = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, pad)], constant_values=fill)
            if mask.dtype == np.bool_:
                mask = _allowed_bias(mask, dtype)
            bias = mask.copy() if causal else bias + mask
        diff = _offset_diff(q_len, kv_len, offset)
        if causal:
            bias = bias + _allowed_bias(diff >= 0, bias.dtype)
        left, right = windows
        if left >= 0 or right >= 0:
            allowed = np.ones(diff.shape, bool)
            if left >= 0:
                allowed &= diff <= left
            if right >= 0:
                allowed &= -diff <= right
            bias = np.zeros((q_len, kv_len), dtype) + bias + _allowed_bias(allowed, bias.dtype)
        return bias

    def reference(self, q, k, v, attn_mask=None, past_key=None, past_value=None, nonpad_kv_seqlen=None, *,
                  is_causal, kv_num_heads, q_num_heads, qk_matmul_output_mode, scale, softcap,
                  softmax_precision, left_window_size, right_window_size):
        attrs = {"left_window_size": left_window_size, "right_window_size": right_window_size,
                 "q_num_heads": q_num_heads, "kv_num_heads": kv_num_heads}
        self._check([q.ndim, k.ndim, v.ndim], attrs, (past_key is not None, past_value is not None),
                    nonpad_kv_seqlen is not None)
        three_d = q.ndim == 3
        if three_d:
            q, k, v = self._heads(q, q_num_heads), self._heads(k, kv_num_heads), self._heads(v, kv_num_heads)
        dtype = q.dtype
        root = dtype.type(np.sqrt(1 / np.sqrt(q.shape[3]) if scale is None else float(np.float32(scale))))
        if past_key is not None:
            k, v = np.concatenate([past_key, k], axis=2), np.concatenate([past_value, v], axis=2)
        present_key, present_value = k, v
        q_len, kv_len = q.shape[2], k.shape[2]
        if nonpad_kv_seqlen is not None:
            offset = nonpad_kv_seqlen.reshape(-1) - q_len
        else:
            offset = past_key.shape[2] if past_key is not None else 0
        bias = self._bias(attn_mask, q_len, kv_len, dtype, offset, bool(is_causal),
                          (left_window_size, right_window_size))
        if nonpad_kv_seqlen is not None:
            keep = np.arange(kv_len) < nonpad_kv_seqlen.reshape(-1, 1, 1, 1)
            bias = bias + _allowed_bias(keep, bias.dtype)
        if q.shape[1] != k.shape[1] and k.shape[1] and q.shape[1] % k.shape[1] == 0:
            repeats = q.shape[1] // k.shape[1]
            k, v = np.repeat(k, repeats, axis=1), np.repeat(v, repeats, axis=1)
        scores = np.matmul(q * root, k.transpose(0, 1, 3, 2) * root).astype(dtype)
        if softcap > 0:
            cap = float(np.float32(softcap))
            scores = np.tanh(scores / cap) * cap
        biased = scores + bias
        logits = biased if softmax_precision is None else biased.astype(dt.from_onnx(softmax_precision))
        top = np.max(logits, axis=-1, keepdims=True)
        e = np.exp(logits - np.where(np.isneginf(top), 0, top).astype(logits.dtype))
        total = np.sum(e, axis=-1, keepdims=True)
        weights = e / np.where(total == 0, np.ones((), total.dtype), total)
        weights = np.where(np.isneginf(np.max(bias, axis=-1, keepdims=True)), 0, weights)
        qk_output = {2: biased, 3: weights}.get(qk_matmul_output_mode, scores)
        y = np.matmul(weights.astype(dtype), v).astype(dtype)
        if three_d:
            y = y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)
        return y, present_key, present_value, qk_output.astype(dtype)
