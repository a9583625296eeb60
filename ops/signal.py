"""Signal ops: Fourier transforms and windows.

Complex tensors are real ones with a last dimension of 2 (real, imaginary); a last
dimension of 1 holds a real signal. Transforms are computed in complex128 and cast back
to the input's dtype.
"""
from __future__ import annotations

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register

WINDOW_TYPES = dt.NUMERIC


def _scalar(value, what: str, op: str) -> int:
    """An integer input that must hold one value."""
    arr = np.asarray(value)
    if arr.size != 1:
        raise ShapeError(f"{op} {what} must be a scalar, got shape {list(arr.shape)}")
    return int(arr.reshape(()))


def _output_dtype(op: str, code: int, allowed=WINDOW_TYPES) -> str:
    """The dtype named by an output_datatype attribute (an ONNX element-type code)."""
    try:
        dtype = dt.from_onnx(code)
    except TypeError:
        dtype = None
    if dtype not in allowed:
        raise ShapeError(f"{op} output_datatype {code} is not one of {', '.join(allowed)}")
    return dtype


def _to_complex(x: np.ndarray, op: str) -> np.ndarray:
    """A [..., 1] real or [..., 2] complex tensor as complex128 without the last dim."""
    if x.ndim < 1 or x.shape[-1] not in (1, 2):
        raise ShapeError(f"{op} input's last dimension must be 1 (real) or 2 (complex), got shape {list(x.shape)}")
    c = x[..., 0].astype(np.complex128)
    if x.shape[-1] == 2:
        c = c + 1j * x[..., 1].astype(np.float64)
    return c


def _from_complex(c: np.ndarray, dtype) -> np.ndarray:
    """complex -> [..., 2] (real, imaginary) in dtype."""
    return np.stack([c.real, c.imag], axis=-1).astype(dtype)


# -- windows ---------------------------------------------------------------------------------
class _Window(OpDef):
    """ONNX's generalized-cosine window function body, in float32:
    w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N), N = size if periodic else size - 1,
    then Cast to output_datatype."""

    inputs = (Param("size", "T1"),)
    outputs = (Param("output", "T2"),)
    attrs = {"output_datatype": Attr("int", 1), "periodic": Attr("int", 1)}
    constraints = {"T1": dt.INDEX, "T2": WINDOW_TYPES}
    composite = True
    coefficients: tuple[float, float, float]
    TAU = np.float32(2 * np.pi)

    def infer(self, ctx: InferContext):
        dtype = _output_dtype(self.name, ctx.attrs["output_datatype"])
        size = ctx.value(0)
        length = None if size is None else max(_scalar(size, "size", self.name), 0)
        return [TensorType(dtype, (length,))]

    def reference(self, size, *, output_datatype, periodic):
        dtype = _output_dtype(self.name, output_datatype)
        a0, a1, a2 = (np.float32(a) for a in self.coefficients)
        n = np.float32(_scalar(size, "size", self.name))
        denominator = n if periodic else n - np.float32(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            angle = np.arange(max(int(n), 0), dtype=np.float32) * (self.TAU / denominator)
            w = a0 - a1 * np.cos(angle)
            if a2:
                w = w + a2 * np.cos(angle * np.float32(2))
            return w.astype(dtype)

    def decompose(self, d):
        a0, a1, a2 = (d.const(np.float32(a)) for a in self.coefficients)
        f32 = dt.onnx_code("float32")
        n = d.op("Cast", d.inputs[0], to=f32)
        denominator = n if d.attrs["periodic"] else d.op("Sub", n, d.const(np.float32(1)))
        steps = d.op("Range", d.const(np.float32(0)), n, d.const(np.float32(1)))
        angle = d.op("Mul", steps, d.op("Div", d.const(self.TAU), denominator))
        w = d.op("Sub", a0, d.op("Mul", a1, d.op("Cos", angle)))
        if self.coefficients[2]:
            w = d.op("Add", w, d.op("Mul", a2, d.op("Cos", d.op("Mul", angle, d.const(np.float32(2))))))
        d.op("Cast", w, to=d.attrs["output_datatype"], outputs=d.outputs)


@register
class HannWindow(_Window):
    name = "HannWindow"
    coefficients = (0.5, 0.5, 0.0)


@register
class HammingWindow(_Window):
    name = "HammingWindow"
    coefficients = (25 / 46, 21 / 46, 0.0)


@register
class BlackmanWindow(_Window):
    name = "BlackmanWindow"
    coefficients = (0.42, 0.5, 0.08)


# -- transforms ------------------------------------------------------------------------------
@register
class DFT(OpDef):
    """Opset-20 form: dft_length and axis (default -2) as inputs. onesided with inverse=0
    keeps bins [0, n//2] (RFFT); with inverse=1 it takes those bins and returns the real
    signal of length n (IRFFT, default n = 2 * (bins - 1))."""

    name = "DFT"
    inputs = (Param("input", "T1"), Param("dft_length", "T2", optional=True),
              Param("axis", "int64", optional=True))
    outputs = (Param("output", "T1"),)
    attrs = {"inverse": Attr("int", 0), "onesided": Attr("int", 0)}
    constraints = {"T1": dt.FLOATS, "T2": dt.INDEX}

    @staticmethod
    def _axis(axis, rank: int, node: str | None = None) -> int:
        """The transformed axis in [0, rank - 2]; the last axis holds (real, imaginary)."""
        a = -2 if axis is None else _scalar(axis, "axis", "DFT")
        if not (-rank <= a <= -2 or 0 <= a <= rank - 2):
            raise ShapeError(f"DFT axis {a} is out of range for an input of rank {rank}", node)
        return a % rank

    @staticmethod
    def _length(dft_length, dim, inverse: int, onesided: int, node: str | None = None):
        """The transform length n; None when it depends on an unknown dim."""
        if dft_length is not None:
            n = _scalar(dft_length, "dft_length", "DFT")
        elif not isinstance(dim, int):
            return None
        else:
            n = 2 * (dim - 1) if inverse and onesided else dim
        if n < 1:
            raise ShapeError(f"DFT length must be positive, got {n}", node)
        return n

    def infer(self, ctx: InferContext):
        shape, dtype = ctx.shape(0), ctx.dtype(0)
        if dtype is None:
            return [None]
        has_axis = ctx.has(2)
        axis_value = ctx.value(2) if has_axis else None
        if shape is None or (has_axis and axis_value is None):
            return [TensorType(dtype, None)]
        axis = self._axis(axis_value, len(shape), ctx.node.name)
        inverse, onesided = ctx.attrs["inverse"], ctx.attrs["onesided"]
        if ctx.has(1) and ctx.value(1) is None:
            n = None
        else:
            n = self._length(ctx.value(1) if ctx.has(1) else None, shape[axis], inverse, onesided, ctx.node.name)
        out = list(shape)
        out[axis] = n // 2 + 1 if onesided and not inverse and n is not None else n
        out[-1] = 1 if inverse and onesided else 2
        return [TensorType(dtype, tuple(out))]

    def reference(self, x, dft_length=None, axis=None, *, inverse, onesided):
        axis = self._axis(axis, x.ndim)
        signal = _to_complex(x, self.name)
        n = self._length(dft_length, x.shape[axis], inverse, onesided)
        if inverse and onesided:
            return np.fft.irfft(signal, n=n, axis=axis)[..., np.newaxis].astype(x.dtype)
        if inverse:
            return _from_complex(np.fft.ifft(signal, n=n, axis=axis), x.dtype)
        spectrum = np.fft.fft(signal, n=n, axis=axis)
        if onesided:
            spectrum = np.take(spectrum, np.arange(n // 2 + 1), axis=axis)
        return _from_complex(spectrum, x.dtype)


@register
class STFT(OpDef):
    """Frames [batch, frames, frame_length] of the signal, frame f starting at
    f * frame_step, times the window (ones by default), each transformed by a DFT of
    length frame_length; onesided keeps bins [0, frame_length // 2]."""

    name = "STFT"
    inputs = (Param("signal", "T1"), Param("frame_step", "T2"), Param("window", "T1", optional=True),
              Param("frame_length", "T2", optional=True))
    outputs = (Param("output", "T1"),)
    attrs = {"onesided": Attr("int", 1)}
    constraints = {"T1": dt.FLOATS, "T2": dt.INDEX}

    @staticmethod
    def _frame_length(window_shape, frame_length, signal_length):
        """frame_length, else the window's length, else the signal's; None when unknown."""
        if frame_length is not None:
            n = _scalar(frame_length, "frame_length", "STFT")
            if window_shape is not None and isinstance(window_shape[0], int) and window_shape[0] != n:
                raise ShapeError(f"STFT window length {window_shape[0]} != frame_length {n}")
            return n
        if window_shape is not None:
            return window_shape[0] if isinstance(window_shape[0], int) else None
        return signal_length if isinstance(signal_length, int) else None

    @staticmethod
    def _frames(signal_length: int, frame_length: int, step: int) -> int:
        if step < 1 or frame_length < 1 or frame_length > signal_length:
            raise ShapeError(f"STFT needs 0 < frame_length <= signal length ({signal_length}) and "
                             f"frame_step >= 1, got frame_length {frame_length}, frame_step {step}")
        return (signal_length - frame_length) // step + 1

    def infer(self, ctx: InferContext):
        shape, dtype = ctx.shape(0), ctx.dtype(0)
        if dtype is None:
            return [None]
        if shape is None:
            return [TensorType(dtype, (None, None, None, 2))]
        if len(shape) != 3:
            raise ShapeError(f"STFT signal must have rank 3, got {len(shape)}", ctx.node.name)
        if ctx.has(3) and ctx.value(3) is None:
            n = None
        else:
            window_shape = ctx.shape(2) if ctx.has(2) else None
            n = self._frame_length(window_shape, ctx.value(3) if ctx.has(3) else None, shape[1])
        step = ctx.value(1)
        frames = None
        if n is not None and step is not None and isinstance(shape[1], int):
            frames = self._frames(shape[1], n, _scalar(step, "frame_step", self.name))
        bins = n // 2 + 1 if n is not None and ctx.attrs["onesided"] else n
        return [TensorType(dtype, (shape[0], frames, bins, 2))]

    def reference(self, signal, frame_step, window=None, frame_length=None, *, onesided):
        if signal.ndim != 3:
            raise ShapeError(f"STFT signal must have rank 3, got {signal.ndim}")
        c = _to_complex(signal, self.name)
        n = self._frame_length(None if window is None else window.shape, frame_length, signal.shape[1])
        step = _scalar(frame_step, "frame_step", self.name)
        frames = self._frames(signal.shape[1], n, step)
        starts = np.arange(frames)[:, np.newaxis] * step
        framed = c[:, starts + np.arange(n)]
        if window is not None:
            framed = framed * window.astype(np.float64)
        spectrum = np.fft.fft(framed, n=n, axis=-1)
        if onesided:
            spectrum = spectrum[..., : n // 2 + 1]
        return _from_complex(spectrum, signal.dtype)


@register
class MelWeightMatrix(OpDef):
    """[dft_length // 2 + 1, num_mel_bins] triangular filters with peaks of 1, their
    edges num_mel_bins + 2 points equally spaced on the mel scale
    mel(f) = 2595 log10(1 + f / 700) over [lower_edge_hertz, upper_edge_hertz), each
    mapped to the bin floor((dft_length + 1) * f / sample_rate). Filter parts past the
    last bin (edges above the Nyquist frequency) are dropped."""

    name = "MelWeightMatrix"
    inputs = (Param("num_mel_bins", "T1"), Param("dft_length", "T1"), Param("sample_rate", "T1"),
              Param("lower_edge_hertz", "T2"), Param("upper_edge_hertz", "T2"))
    outputs = (Param("output", "T3"),)
    attrs = {"output_datatype": Attr("int", 1)}
    constraints = {"T1": dt.INDEX, "T2": dt.FLOATS, "T3": WINDOW_TYPES}

    def infer(self, ctx: InferContext):
        dtype = _output_dtype(self.name, ctx.attrs["output_datatype"])
        mel, length = ctx.value(0), ctx.value(1)
        rows = None if length is None else _scalar(length, "dft_length", self.name) // 2 + 1
        cols = None if mel is None else _scalar(mel, "num_mel_bins", self.name)
        return [TensorType(dtype, (rows, cols))]

    @staticmethod
    def _mel(hertz: np.ndarray) -> np.ndarray:
        """The mel value of a frequency, the log taken in the frequency's own dtype."""
        return 2595 * np.log1p(hertz / 700) / np.log(10)

    def reference(self, num_mel_bins, dft_length, sample_rate, lower_edge_hertz, upper_edge_hertz, *,
                  output_datatype):
        dtype = _output_dtype(self.name, output_datatype)
        mels = _scalar(num_mel_bins, "num_mel_bins", self.name)
        length = _scalar(dft_length, "dft_length", self.name)
        rate = _scalar(sample_rate, "sample_rate", self.name)
        low, high = self._mel(np.asarray(lower_edge_hertz)), self._mel(np.asarray(upper_edge_hertz))
        points = np.arange(mels + 2) * ((high - low) / (mels + 2)) + low
        hertz = 700 * np.expm1(points / 2595 * np.log(10))
        edges = (((length + 1) * hertz) // rate).astype(np.int64)
        rows = length // 2 + 1
        out = np.zeros((rows, max(mels, 0)))
        bins = np.arange(rows)
        for i in range(mels):
            left, center, right = edges[i:i + 3]
            if center == left:
                out[bins == center, i] = 1
            else:
                rising = (bins >= left) & (bins <= center)
                out[rising, i] = (bins[rising] - left) / (center - left)
            if right > center:
                falling = (bins >= center) & (bins < right)
                out[falling, i] = (right - bins[falling]) / (right - center)
        return out.astype(dtype)
