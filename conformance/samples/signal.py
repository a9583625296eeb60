"""Samples for the signal ops. For the windows and MelWeightMatrix the sample dtype is the
output dtype (output_datatype); for DFT and STFT it is the signal's."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .linalg import values

WINDOW_TOLERANCE = {"float16": (1e-3, 1e-3), "float32": (1e-6, 1e-6), "float64": (1e-6, 1e-6)}
"""ONNX's window function bodies compute in float32, whatever the output dtype."""

FFT_TOLERANCE = {"float16": (1e-2, 5e-2), "float32": (1e-4, 1e-4), "float64": (1e-9, 1e-9)}
"""A transform sums up to a few dozen values of magnitude <= 10."""

INDEX_TYPES = st.sampled_from(dt.INDEX)


def _index(draw, value: int) -> np.ndarray:
    return np.array(value, draw(INDEX_TYPES))


def _window(dtype):
    @st.composite
    def draw(draw_):
        size = _index(draw_, draw_(st.integers(0, 9)))
        attrs = {"output_datatype": dt.onnx_code(dtype)} if dtype != "float32" or draw_(st.booleans()) else {}
        if draw_(st.booleans()):
            attrs["periodic"] = draw_(st.sampled_from([0, 1]))
        return Sample([size], attrs)

    return draw()


for _op in ("HannWindow", "HammingWindow", "BlackmanWindow"):
    samples(_op, dt.NUMERIC, WINDOW_TOLERANCE)(_window)


@samples("DFT", dt.FLOATS, FFT_TOLERANCE)
def dft(dtype):
    """onesided forward transforms take real input, onesided inverse ones complex input."""

    @st.composite
    def draw(draw_):
        inverse, onesided = draw_(st.sampled_from([0, 1])), draw_(st.sampled_from([0, 1]))
        if onesided:
            last = 2 if inverse else 1
        else:
            last = draw_(st.sampled_from([1, 2]))
        signal = [draw_(st.integers(1, 4)) for _ in range(draw_(st.integers(1, 3)))]
        rank = len(signal) + 1
        x = draw_(values(dtype, tuple(signal) + (last,), special=False))
        axis = draw_(st.one_of(st.integers(0, rank - 2), st.integers(-rank, -2)))
        dim = signal[axis % rank]
        default_length = 2 * (dim - 1) if inverse and onesided else dim
        length = draw_(st.integers(1, 6)) if draw_(st.booleans()) or default_length < 1 else None
        inputs = [x, None if length is None else _index(draw_, length)]
        if axis != -2 or draw_(st.booleans()):
            inputs.append(np.array(axis, np.int64))
        attrs = {k: v for k, v in (("inverse", inverse), ("onesided", onesided)) if v or draw_(st.booleans())}
        return Sample(inputs, attrs)

    return draw()


@samples("STFT", dt.FLOATS, FFT_TOLERANCE)
def stft(dtype):
    """onesided (the default) needs a real signal; complex signals draw onesided=0."""

    @st.composite
    def draw(draw_):
        length = draw_(st.integers(1, 8))
        last = draw_(st.sampled_from([1, 2]))
        x = draw_(values(dtype, (draw_(st.integers(1, 2)), length, last), special=False))
        frame_length = draw_(st.integers(1, length))
        inputs = [x, _index(draw_, draw_(st.integers(1, 3)))]
        kind = draw_(st.sampled_from(["window", "length", "both", "neither"]))
        window = draw_(values(dtype, (frame_length,), bound=1, special=False))
        index_type = draw_(INDEX_TYPES)
        if kind == "window":
            inputs.append(window)
        elif kind == "length":
            inputs += [None, np.array(frame_length, index_type)]
        elif kind == "both":
            inputs += [window, np.array(frame_length, index_type)]
        attrs = {"onesided": 0} if last == 2 else {"onesided": draw_(st.sampled_from([0, 1]))}
        return Sample(inputs, attrs)

    return draw()


@samples("MelWeightMatrix", dt.NUMERIC)
def mel_weight_matrix(dtype):
    """Edges within [0, sample_rate / 2]; the edge frequencies are drawn in every float type."""

    @st.composite
    def draw(draw_):
        rate = draw_(st.sampled_from([8000, 16000, 22050]))
        lower = draw_(st.sampled_from([0.0, 20.0, 100.0, 300.0]))
        upper = draw_(st.sampled_from([1000.0, 3000.0, rate / 2]))
        edge_type = draw_(st.sampled_from(dt.FLOATS))
        index_type = draw_(INDEX_TYPES)
        inputs = [np.array(v, index_type) for v in (draw_(st.integers(1, 6)), draw_(st.integers(4, 40)), rate)]
        inputs += [np.array(lower, edge_type), np.array(upper, edge_type)]
        attrs = {"output_datatype": dt.onnx_code(dtype)} if dtype != "float32" or draw_(st.booleans()) else {}
        return Sample(inputs, attrs)

    return draw()
