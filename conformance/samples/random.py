"""Samples for the random ops, and the checks that judge their values by distribution.

No reference can predict a generator's values, so each op registers a ``random`` check
(see OpSamples): values in range, and sample means within bounds that a correct
generator breaks with probability below FALSE_ALARM (Hoeffding's inequality for bounded
values, the normal tail for normal ones). Shapes are small with an occasional long
vector, where the means say something.
"""
from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .linalg import values
from .strategies import shapes

FALSE_ALARM = 1e-9
"""The chance that a check fails a correct generator."""

NORMAL_Z = 6.1
"""Two-sided normal tail: P(|Z| > 6.1) is about 1e-9."""


def hoeffding(n: int, width: float) -> float:
    """How far the mean of n independent values in an interval of ``width`` may stray
    from its expectation, but with probability FALSE_ALARM."""
    return math.inf if n == 0 else width * math.sqrt(math.log(2 / FALSE_ALARM) / (2 * n))


def _rounding(dtype, *magnitudes: float) -> float:
    """Slack for values rounded to dtype: a few ulps of the largest magnitude."""
    return 4 * float(np.finfo(dtype).eps) * max(1.0, *map(abs, magnitudes))


def _attr(sample: Sample, name: str, default: float) -> float:
    return float(np.float32(sample.attrs.get(name, default)))


def check_uniform(sample: Sample, outputs: list[np.ndarray]) -> None:
    (y,) = outputs
    low, high = _attr(sample, "low", 0.0), _attr(sample, "high", 1.0)
    lo, hi = np.asarray(low, y.dtype), np.asarray(high, y.dtype)
    assert np.all((y >= lo) & (y < hi)), f"values outside [{low}, {high})"
    if y.size:
        drift = abs(float(np.mean(y, dtype=np.float64)) - (low + high) / 2)
        bound = hoeffding(y.size, high - low) + _rounding(y.dtype, low, high)
        assert drift <= bound, f"mean {np.mean(y)} strays from {(low + high) / 2} by more than {bound}"


def check_normal(sample: Sample, outputs: list[np.ndarray]) -> None:
    (y,) = outputs
    mean, scale = _attr(sample, "mean", 0.0), _attr(sample, "scale", 1.0)
    assert np.all(np.isfinite(y)), "non-finite values"
    if y.size:
        drift = abs(float(np.mean(y, dtype=np.float64)) - mean)
        bound = NORMAL_Z * abs(scale) / math.sqrt(y.size) + _rounding(y.dtype, mean, NORMAL_Z * scale)
        assert drift <= bound, f"mean {np.mean(y)} strays from {mean} by more than {bound}"


def check_bernoulli(sample: Sample, outputs: list[np.ndarray]) -> None:
    (y,) = outputs
    p = sample.inputs[0].astype(np.float64)
    ones = y.astype(np.float64)
    assert np.all((ones == 0) | (ones == 1)), "values other than 0 and 1"
    assert np.all(ones[p == 0] == 0) and np.all(ones[p == 1] == 1), "p = 0 gave 1 or p = 1 gave 0"
    if y.size:
        drift = abs(float(np.mean(ones - p)))
        assert drift <= hoeffding(y.size, 1.0), f"frequency of ones strays from mean(p) by {drift}"


def check_multinomial(sample: Sample, outputs: list[np.ndarray]) -> None:
    (y,) = outputs
    logits = sample.inputs[0].astype(np.float64)
    classes = logits.shape[1]
    assert np.all((y >= 0) & (y < classes)), f"class indices outside [0, {classes})"
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = weights / weights.sum(axis=1, keepdims=True)
    for row, drawn in zip(p, y):
        assert not np.any(row[drawn] == 0), "drew a class of probability 0"
        freq = np.bincount(drawn, minlength=classes) / max(drawn.size, 1)
        bound = hoeffding(drawn.size, 1.0)
        assert np.all(np.abs(freq - row) <= bound), f"class frequencies {freq} stray from {row} by more than {bound}"


def _seed():
    return st.one_of(st.none(), st.sampled_from([0.0, 1.0, 42.0, -3.5, 12345.0]))


def _shape():
    """Small shapes (scalars and zero-size dims included), or a vector long enough for
    the mean checks to bite."""
    return st.one_of(shapes(max_dims=3), st.integers(200, 1000).map(lambda n: (n,)))


def _with_seed(draw_, attrs: dict) -> dict:
    seed = draw_(_seed())
    return attrs if seed is None else {**attrs, "seed": seed}


def _uniform_attrs(draw_) -> dict:
    low = draw_(st.sampled_from([0.0, -1.0, 2.5, -10.0]))
    return {"low": low, "high": low + draw_(st.sampled_from([1.0, 0.5, 4.0, 20.0]))}


def _normal_attrs(draw_) -> dict:
    return {"mean": draw_(st.sampled_from([0.0, 1.5, -4.0])), "scale": draw_(st.sampled_from([1.0, 0.1, 3.0]))}


@samples("RandomUniform", dt.FLOATS, random=check_uniform)
def random_uniform(dtype):
    @st.composite
    def draw(draw_):
        attrs = {"shape": list(draw_(_shape())), "dtype": dt.onnx_code(dtype), **_uniform_attrs(draw_)}
        return Sample([], _with_seed(draw_, attrs))

    return draw()


@samples("RandomNormal", dt.FLOATS, random=check_normal)
def random_normal(dtype):
    @st.composite
    def draw(draw_):
        attrs = {"shape": list(draw_(_shape())), "dtype": dt.onnx_code(dtype), **_normal_attrs(draw_)}
        return Sample([], _with_seed(draw_, attrs))

    return draw()


def _like(dtype, draw_, attrs: dict) -> Sample:
    """An input of ``dtype`` to copy the shape of, the output dtype copied or set."""
    x = draw_(values(dtype, draw_(_shape()), special=False))
    if draw_(st.booleans()):
        attrs["dtype"] = dt.onnx_code(draw_(st.sampled_from(dt.FLOATS)))
    return Sample([x], _with_seed(draw_, attrs))


@samples("RandomUniformLike", dt.FLOATS, random=check_uniform)
def random_uniform_like(dtype):
    return st.composite(lambda draw_: _like(dtype, draw_, _uniform_attrs(draw_)))()


@samples("RandomNormalLike", dt.FLOATS, random=check_normal)
def random_normal_like(dtype):
    return st.composite(lambda draw_: _like(dtype, draw_, _normal_attrs(draw_)))()


@samples("Bernoulli", dt.FLOATS, random=check_bernoulli)
def bernoulli(dtype):
    """Probabilities in [0, 1] with exact 0s and 1s; output dtype the input's or any other."""

    @st.composite
    def draw(draw_):
        shape = draw_(_shape())
        p = draw_(values(dtype, shape, bound=1, special=False, nonnegative=True))
        if p.size and draw_(st.booleans()):
            p.flat[: p.size // 3] = 0
            p.flat[p.size // 3: 2 * p.size // 3] = 1
        attrs = {}
        if draw_(st.booleans()):
            attrs["dtype"] = dt.onnx_code(draw_(st.sampled_from(dt.ALL)))
        return Sample([p], _with_seed(draw_, attrs))

    return draw()


@samples("Multinomial", dt.FLOATS, random=check_multinomial)
def multinomial(dtype):
    """Logits in [-3, 3], some classes -inf (never all of a row); 1 to 400 draws per row."""

    @st.composite
    def draw(draw_):
        batch, classes = draw_(st.integers(1, 3)), draw_(st.integers(1, 5))
        x = draw_(values(dtype, (batch, classes), bound=3, special=False))
        if classes > 1 and draw_(st.booleans()):
            x[:, draw_(st.integers(0, classes - 1))] = -np.inf
        attrs = {"sample_size": draw_(st.sampled_from([1, 5, 400]))}
        if draw_(st.booleans()):
            attrs["dtype"] = dt.onnx_code(draw_(st.sampled_from(["int32", "int64"])))
        return Sample([x], _with_seed(draw_, attrs))

    return draw()
