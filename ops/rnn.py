"""Recurrent ops: RNN, GRU and LSTM with ONNX semantics (directions, layouts,
activations, clipping, per-batch sequence lengths)."""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import Dim, TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register

Activation = Callable[[np.ndarray], np.ndarray]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


# name -> (function of (x, alpha, beta), default alpha, default beta); None: unused
_ACTIVATIONS: dict[str, tuple[Callable, float | None, float | None]] = {
    "relu": (lambda x, a, b: np.maximum(x, 0), None, None),
    "tanh": (lambda x, a, b: np.tanh(x), None, None),
    "sigmoid": (lambda x, a, b: _sigmoid(x), None, None),
    "affine": (lambda x, a, b: a * x + b, 1.0, 0.0),
    "leakyrelu": (lambda x, a, b: np.where(x >= 0, x, a * x), 0.01, None),
    "thresholdedrelu": (lambda x, a, b: np.where(x >= a, x, 0), 1.0, None),
    "scaledtanh": (lambda x, a, b: a * np.tanh(b * x), 1.0, 1.0),
    "hardsigmoid": (lambda x, a, b: np.clip(a * x + b, 0, 1), 0.2, 0.5),
    "elu": (lambda x, a, b: np.where(x >= 0, x, a * (np.exp(np.minimum(x, 0)) - 1)), 1.0, None),
    "softsign": (lambda x, a, b: x / (1 + np.abs(x)), None, None),
    "softplus": (lambda x, a, b: np.logaddexp(0, x), None, None),
}


def activation_functions(names: Sequence[str], alphas: Sequence[float] | None,
                         betas: Sequence[float] | None, dtype: np.dtype) -> list[Activation]:
    """The activation functions, each bound to its alpha and beta.

    Alphas and betas are consumed in order by the activations that take them (as ONNX
    Runtime does); once they run out, an activation takes the default of the ONNX
    operator of its name (Affine and ScaledTanh: identity scaling)."""
    alpha_iter, beta_iter = iter(alphas or ()), iter(betas or ())
    out: list[Activation] = []
    for name in names:
        key = name.lower()
        if key not in _ACTIVATIONS:
            raise ShapeError(f"unknown recurrent activation '{name}'")
        fn, alpha, beta = _ACTIVATIONS[key]
        a = None if alpha is None else dtype.type(next(alpha_iter, alpha))
        b = None if beta is None else dtype.type(next(beta_iter, beta))
        out.append(lambda x, fn=fn, a=a, b=b: fn(x, a, b).astype(x.dtype))
    return out


def _directions(direction: str) -> list[bool]:
    """For each direction, whether it runs backwards in time."""
    table = {"forward": [False], "reverse": [True], "bidirectional": [False, True]}
    if direction not in table:
        raise ShapeError(f"unknown recurrent direction '{direction}'")
    return table[direction]


class Recurrent(OpDef):
    """Shared schema, inference and time loop of RNN, GRU and LSTM.

    Subclasses set ``gates`` (weight blocks per direction), ``default_activations``
    (per direction) and define ``cell(xt, state, params, fns, attrs)``: one time step
    of one direction, returning the new states (h first)."""

    gates: int
    default_activations: tuple[str, ...]
    state_outputs: int = 1
    constraints = {"T": dt.FLOATS, "T1": ("int32",)}
    common_attrs = {
        "activation_alpha": Attr("floats", None),
        "activation_beta": Attr("floats", None),
        "activations": Attr("strings", None),
        "clip": Attr("float", None),
        "direction": Attr("string", "forward"),
        "hidden_size": Attr("int", None),
        "layout": Attr("int", 0),
    }

    def infer(self, ctx: InferContext) -> list[TensorType | None]:
        dtype = ctx.dtype(0)
        if dtype is None:
            return [None] * len(ctx.node.outputs)
        x = ctx.shape(0)
        layout = ctx.attrs["layout"]
        seq: Dim = None if x is None else x[1 if layout else 0]
        batch: Dim = None if x is None else x[0 if layout else 1]
        dirs = len(_directions(ctx.attrs["direction"]))
        hidden: Dim = ctx.attrs["hidden_size"]
        r = ctx.shape(2)
        if hidden is None and r is not None:
            hidden = r[2]
        if layout:
            y, state = (batch, seq, dirs, hidden), (batch, dirs, hidden)
        else:
            y, state = (seq, dirs, batch, hidden), (dirs, batch, hidden)
        types = [TensorType(dtype, y)] + [TensorType(dtype, state)] * self.state_outputs
        return types[:len(ctx.node.outputs)]

    def activation_names(self, attrs: dict, dirs: int) -> list[str]:
        names = attrs["activations"]
        per_dir = len(self.default_activations)
        if names is None:
            return list(self.default_activations) * dirs
        names = list(names)
        if len(names) == per_dir and dirs == 2:
            names = names * 2
        if len(names) < per_dir * dirs:
            raise ShapeError(f"{self.name} needs {per_dir * dirs} activations, got {len(names)}")
        return names[:per_dir * dirs]

    def run(self, x, w, r, b, seq_lens, states: list[np.ndarray | None], peepholes, attrs: dict):
        """The time loop shared by the three ops. ``states`` are the initial states (h,
        and c for LSTM), None when omitted. Returns Y and the final states in x's dtype."""
        layout = attrs["layout"]
        if layout:
            x = np.swapaxes(x, 0, 1)
            states = [None if s is None else np.swapaxes(s, 0, 1) for s in states]
        backwards = _directions(attrs["direction"])
        dirs = len(backwards)
        seq, batch, _ = x.shape
        hidden = r.shape[-1]
        if w.shape[0] != dirs:
            raise ShapeError(f"{self.name} direction '{attrs['direction']}' needs {dirs} weight sets, "
                             f"got {w.shape[0]}")
        if attrs["hidden_size"] is not None and attrs["hidden_size"] != hidden:
            raise ShapeError(f"{self.name} hidden_size {attrs['hidden_size']} disagrees with R ({hidden})")
        work = np.dtype(np.float32) if x.dtype == np.float16 else x.dtype
        lens = np.full(batch, seq, np.int64) if seq_lens is None else seq_lens.astype(np.int64)
        if np.any((lens < 0) | (lens > seq)):
            raise ShapeError(f"{self.name} sequence_lens must lie in [0, {seq}]")
        if b is None:
            b = np.zeros((dirs, 2 * self.gates * hidden), work)
        init = [np.zeros((dirs, batch, hidden), work) if s is None else s.astype(work) for s in states]
        acts = activation_functions(self.activation_names(attrs, dirs), attrs["activation_alpha"],
                                    attrs["activation_beta"], work)
        per_dir = len(self.default_activations)
        xw = x.astype(work)
        rows = np.arange(batch)
        y = np.zeros((seq, dirs, batch, hidden), work)
        finals = [np.empty_like(s) for s in init]
        with np.errstate(over="ignore"):
            for d, back in enumerate(backwards):
                params = (w[d].astype(work), r[d].astype(work), b[d].astype(work),
                          None if peepholes is None else peepholes[d].astype(work))
                state = [s[d] for s in init]
                fns = acts[d * per_dir:(d + 1) * per_dir]
                for step in range(seq):
                    active = step < lens
                    t = np.where(active, lens - 1 - step, 0) if back else np.full(batch, step)
                    new = self.cell(xw[t, rows], state, params, fns, attrs)
                    state = [np.where(active[:, None], n, s) for n, s in zip(new, state)]
                    y[t[active], d, rows[active]] = new[0][active]
                for f, s in zip(finals, state):
                    f[d] = s
        if layout:
            y = np.transpose(y, (2, 0, 1, 3))
            finals = [np.swapaxes(f, 0, 1) for f in finals]
        return tuple(o.astype(x.dtype) for o in [y, *finals])


def _clip(v: np.ndarray, clip: float | None) -> np.ndarray:
    return v if clip is None else np.clip(v, -clip, clip)


def _affine(xt: np.ndarray, h: np.ndarray, w: np.ndarray, r: np.ndarray, wb: np.ndarray,
            rb: np.ndarray) -> np.ndarray:
    """xt W^T + h R^T + Wb + Rb for one gate."""
    return xt @ w.T + h @ r.T + (wb + rb)


def _recurrent_inputs(rest: int) -> tuple[Param, ...]:
    """The inputs shared by the three ops, plus LSTM's ``rest`` (initial_c, P)."""
    base = (Param("X", "T"), Param("W", "T"), Param("R", "T"), Param("B", "T", optional=True),
            Param("sequence_lens", "T1", optional=True), Param("initial_h", "T", optional=True))
    return base + (Param("initial_c", "T", optional=True), Param("P", "T", optional=True))[:rest]


@register
class RNN(Recurrent):
    name = "RNN"
    inputs = _recurrent_inputs(0)
    outputs = (Param("Y", "T", optional=True), Param("Y_h", "T", optional=True))
    attrs = {**Recurrent.common_attrs, "activations": Attr("strings", ["Tanh", "Tanh"])}
    gates = 1
    default_activations = ("Tanh",)

    def activation_names(self, attrs: dict, dirs: int) -> list[str]:
        names = list(attrs["activations"] or ["Tanh", "Tanh"])
        if len(names) < dirs:
            names = names * dirs
        return names[:dirs]

    def cell(self, xt, state, params, fns, attrs):
        w, r, b, _ = params
        (h,) = state
        n = r.shape[-1]
        return [fns[0](_clip(_affine(xt, h, w, r, b[:n], b[n:]), attrs["clip"]))]

    def reference(self, X, W, R, B=None, sequence_lens=None, initial_h=None, **attrs):
        return self.run(X, W, R, B, sequence_lens, [initial_h], None, attrs)


@register
class GRU(Recurrent):
    name = "GRU"
    inputs = _recurrent_inputs(0)
    outputs = (Param("Y", "T", optional=True), Param("Y_h", "T", optional=True))
    attrs = {**Recurrent.common_attrs, "linear_before_reset": Attr("int", 0)}
    gates = 3
    default_activations = ("Sigmoid", "Tanh")

    def cell(self, xt, state, params, fns, attrs):
        w, r, b, _ = params
        (h,) = state
        n = r.shape[-1]
        f, g = fns
        clip = attrs["clip"]
        wz, wr, wh = w[:n], w[n:2 * n], w[2 * n:]
        rz, rr, rh = r[:n], r[n:2 * n], r[2 * n:]
        wbz, wbr, wbh, rbz, rbr, rbh = (b[i * n:(i + 1) * n] for i in range(6))
        z = f(_clip(_affine(xt, h, wz, rz, wbz, rbz), clip))
        reset = f(_clip(_affine(xt, h, wr, rr, wbr, rbr), clip))
        if attrs["linear_before_reset"]:
            pre = xt @ wh.T + reset * (h @ rh.T + rbh) + wbh
        else:
            pre = xt @ wh.T + (reset * h) @ rh.T + rbh + wbh
        candidate = g(_clip(pre, clip))
        return [(1 - z) * candidate + z * h]

    def reference(self, X, W, R, B=None, sequence_lens=None, initial_h=None, **attrs):
        return self.run(X, W, R, B, sequence_lens, [initial_h], None, attrs)


@register
class LSTM(Recurrent):
    name = "LSTM"
    inputs = _recurrent_inputs(2)
    outputs = (Param("Y", "T", optional=True), Param("Y_h", "T", optional=True),
               Param("Y_c", "T", optional=True))
    attrs = {**Recurrent.common_attrs, "input_forget": Attr("int", 0)}
    gates = 4
    state_outputs = 2
    default_activations = ("Sigmoid", "Tanh", "Tanh")

    def cell(self, xt, state, params, fns, attrs):
        w, r, b, p = params
        h, c = state
        n = r.shape[-1]
        f, g, act_h = fns
        clip = attrs["clip"]

        def gate(k: int) -> np.ndarray:
            return _affine(xt, h, w[k * n:(k + 1) * n], r[k * n:(k + 1) * n], b[k * n:(k + 1) * n],
                           b[(4 + k) * n:(5 + k) * n])

        p_i, p_o, p_f = (np.zeros(n, xt.dtype),) * 3 if p is None else (p[:n], p[n:2 * n], p[2 * n:])
        i = f(_clip(gate(0) + p_i * c, clip))
        forget = 1 - i if attrs["input_forget"] else f(_clip(gate(2) + p_f * c, clip))
        cell = forget * c + i * g(_clip(gate(3), clip))
        o = f(_clip(gate(1) + p_o * cell, clip))
        return [o * act_h(cell), cell]

    def reference(self, X, W, R, B=None, sequence_lens=None, initial_h=None, initial_c=None, P=None,
                  **attrs):
        return self.run(X, W, R, B, sequence_lens, [initial_h, initial_c], P, attrs)
