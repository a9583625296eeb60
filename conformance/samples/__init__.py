"""Per-op hypothesis sample generators, in the spirit of PyTorch's OpInfo.

Each op registers ``fn(dtype) -> SearchStrategy[Sample]`` with :func:`samples`. The
suite draws samples, runs the op on a backend and on the numpy reference, and compares
them within the op's tolerance for that dtype.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DEFAULT_TOLERANCE = {  # dtype -> (rtol, atol)
    "float16": (1e-2, 1e-3),
    "float32": (1e-5, 1e-6),
    "float64": (1e-10, 1e-12),
}


@dataclass
class Sample:
    """One call of an op: its inputs (None for an omitted optional one; a list of arrays
    for a sequence), attributes, how many outputs to ask for (None: every schema
    output), and ``outer``: values the op's subgraphs (If, Loop, Scan) read by name from
    the enclosing graph, which the one-node graph declares as extra inputs."""

    inputs: list[Any]
    attrs: dict[str, Any] = field(default_factory=dict)
    n_outputs: int | None = None
    outer: dict[str, np.ndarray] = field(default_factory=dict)

    def describe(self) -> str:
        parts = []
        for i, x in enumerate(self.inputs):
            parts.append(f"input {i}: omitted" if x is None else f"input {i}: {_text(x)}")
        parts.extend(f"outer {name}: {_text(x)}" for name, x in self.outer.items())
        if self.attrs:
            parts.append(f"attrs: {self.attrs!r}")
        return "; ".join(parts)


def _text(x: Any) -> str:
    if isinstance(x, list):
        return "[" + ", ".join(_text(e) for e in x) + "]"
    return f"np.array({x.tolist()!r}, dtype='{x.dtype}')"


RandomCheck = Callable[[Sample, list[np.ndarray]], None]
"""Checks the outputs of a random op for one sample (raises AssertionError)."""


@dataclass
class OpSamples:
    """How to sample one op: the strategy factory, the dtypes it covers, tolerances.

    ``random`` marks an op whose values come from a generator, which no reference can
    predict: its outputs are judged by that check of their distribution (range,
    moments within statistically safe bounds) instead of by value, after their dtypes
    and shapes are compared with the reference's; a seeded sample must also give the
    same values when the backend runs it again."""

    op: str
    strategy: Callable[[str], Any]
    dtypes: tuple[str, ...]
    tolerance: dict[str, tuple[float, float]]
    random: RandomCheck | None = None

    def tolerance_for(self, dtype: str) -> tuple[float, float]:
        return self.tolerance.get(dtype, DEFAULT_TOLERANCE.get(dtype, (0.0, 0.0)))


REGISTRY: dict[str, OpSamples] = {}


def samples(op: str, dtypes: tuple[str, ...], tolerance: dict[str, tuple[float, float]] | None = None,
            random: RandomCheck | None = None):
    """Decorator registering a sample strategy factory ``fn(dtype)`` for ``op``.

    ``dtypes`` are the dtypes the op is exercised with (the dtype of its main input);
    ``tolerance`` overrides DEFAULT_TOLERANCE per dtype as ``(rtol, atol)``; ``random``
    is the distribution check of an op with random outputs (see OpSamples).
    """

    def wrap(fn):
        if op in REGISTRY:
            raise ValueError(f"samples for {op} are registered twice")
        REGISTRY[op] = OpSamples(op, fn, tuple(dtypes), dict(tolerance or {}), random)
        return fn

    return wrap


def all_samples() -> dict[str, OpSamples]:
    """Every op's sample generator (imports the families on first use)."""
    from . import families  # noqa: F401

    return REGISTRY
