"""Samples for the recurrent ops (RNN, GRU, LSTM): small sequences, every direction and
layout, optional inputs, activations with their alpha/beta, clipping."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays

TOLERANCE = {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5), "float64": (1e-10, 1e-12)}
ACTIVATIONS = ("Relu", "Tanh", "Sigmoid", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
               "HardSigmoid", "Elu", "Softsign", "Softplus")
GATES = {"RNN": 1, "GRU": 3, "LSTM": 4}
ACTIVATIONS_PER_DIRECTION = {"RNN": 1, "GRU": 2, "LSTM": 3}
OUTPUTS = {"RNN": 2, "GRU": 2, "LSTM": 3}


def _values(dtype: str, shape, scale: float = 1.0):
    return arrays(dtype, shape, special=False, min_value=-scale, max_value=scale)


def recurrent(op: str, dtype: str):
    """A strategy of samples for one recurrent op."""

    @st.composite
    def draw(draw_):
        seq, batch, size, hidden = (draw_(st.integers(1, n), label=k) for k, n in
                                    (("seq", 4), ("batch", 3), ("input", 4), ("hidden", 4)))
        direction = draw_(st.sampled_from(["forward", "reverse", "bidirectional"]))
        dirs = 2 if direction == "bidirectional" else 1
        layout = draw_(st.sampled_from([0, 1]))
        gates = GATES[op]
        x_shape = (batch, seq, size) if layout else (seq, batch, size)
        state_shape = (batch, dirs, hidden) if layout else (dirs, batch, hidden)
        inputs = [draw_(_values(dtype, x_shape, 2.0)), draw_(_values(dtype, (dirs, gates * hidden, size))),
                  draw_(_values(dtype, (dirs, gates * hidden, hidden)))]
        optional = [
            _values(dtype, (dirs, 2 * gates * hidden)),
            st.lists(st.integers(1, seq), min_size=batch, max_size=batch).map(
                lambda lens: np.array(lens, dtype=np.int32)),
            _values(dtype, state_shape),
        ]
        if op == "LSTM":
            optional += [_values(dtype, state_shape), _values(dtype, (dirs, 3 * hidden))]
        for strategy in optional:
            inputs.append(draw_(strategy) if draw_(st.booleans()) else None)
        while inputs[-1] is None:
            inputs.pop()
        attrs = {"direction": direction, "layout": layout}
        if draw_(st.booleans()):
            attrs["hidden_size"] = hidden
        if draw_(st.booleans()):
            n = ACTIVATIONS_PER_DIRECTION[op] * dirs
            attrs["activations"] = draw_(st.lists(st.sampled_from(ACTIVATIONS), min_size=n, max_size=n))
            params = st.lists(st.floats(0.125, 2.0, width=32), max_size=n)
            for key in ("activation_alpha", "activation_beta"):
                if draw_(st.booleans()):
                    attrs[key] = draw_(params)
        if draw_(st.booleans()):
            attrs["clip"] = draw_(st.floats(0.125, 5.0, width=32))
        if op == "GRU":
            attrs["linear_before_reset"] = draw_(st.sampled_from([0, 1]))
        if op == "LSTM":
            attrs["input_forget"] = draw_(st.sampled_from([0, 1]))
        n_outputs = draw_(st.integers(1, OUTPUTS[op]))
        return Sample(inputs, attrs, n_outputs)

    return draw()


for _op in GATES:
    samples(_op, dt.FLOATS, TOLERANCE)(lambda dtype, op=_op: recurrent(op, dtype))
