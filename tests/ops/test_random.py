"""Random ops: no fixed oracle exists, so they are tested by distribution (large seeded
draws: range, mean, variance, frequencies within bounds a correct generator breaks with
probability about 1e-9), by seeding (same seed, same values; another seed or none,
other values), and by exact dtype and shape (with inference)."""
from __future__ import annotations

import math

import numpy as np
import pytest
from dh_core.conformance.samples import all_samples
from dh_core.conformance.samples.random import NORMAL_Z, hoeffding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import TensorType

from .oracle import decomposed, infer, ours

SAMPLES = all_samples()
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPS = ("RandomUniform", "RandomNormal", "RandomUniformLike", "RandomNormalLike", "Bernoulli", "Multinomial")
CASES = [(op, d) for op in OPS for d in SAMPLES[op].dtypes]
N = 200_000


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_samples_pass_their_distribution_check_and_infer_exactly(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    got = ours(op, s.inputs, s.attrs)
    SAMPLES[op].random(s, got)
    assert infer(op, s.inputs, s.attrs) == [TensorType(y.dtype.name, y.shape) for y in got]


@pytest.mark.parametrize("op,dtype", CASES)
@SETTINGS
@given(data=st.data())
def test_same_seed_same_values(op, dtype, data):
    s = data.draw(SAMPLES[op].strategy(dtype))
    attrs = {**s.attrs, "seed": data.draw(st.floats(-1e6, 1e6, width=32))}
    np.testing.assert_array_equal(ours(op, s.inputs, attrs)[0], ours(op, s.inputs, attrs)[0])


@pytest.mark.parametrize("op", ["RandomUniform", "RandomNormal"])
def test_other_seed_or_no_seed_gives_other_values(op):
    attrs = {"shape": [64]}
    (a,), (b,) = ours(op, [], {**attrs, "seed": 1.0}), ours(op, [], {**attrs, "seed": 2.0})
    (c,), (d,) = ours(op, [], attrs), ours(op, [], attrs)
    assert not np.array_equal(a, b) and not np.array_equal(c, d)


@pytest.mark.parametrize("dtype", dt.FLOATS)
def test_uniform_range_mean_and_variance(dtype):
    (y,) = ours("RandomUniform", [], {"shape": [N], "low": -2.0, "high": 3.0, "dtype": dt.onnx_code(dtype),
                                      "seed": 7.0})
    (like,) = ours("RandomUniformLike", [np.zeros(N, dtype)], {"low": -2.0, "high": 3.0, "seed": 8.0})
    for x in (y, like):
        assert x.dtype == dtype and x.min() >= -2 and x.max() < 3
        assert abs(x.mean(dtype=np.float64) - 0.5) < hoeffding(N, 5.0)
        assert abs(x.var(dtype=np.float64) - 25 / 12) < 0.05  # sd of the variance estimate: about 0.004


@pytest.mark.parametrize("dtype", dt.FLOATS)
def test_normal_mean_and_variance(dtype):
    (y,) = ours("RandomNormal", [], {"shape": [N], "mean": 1.5, "scale": 2.0, "dtype": dt.onnx_code(dtype),
                                     "seed": 3.0})
    (like,) = ours("RandomNormalLike", [np.zeros((N // 100, 100), np.int32)],
                   {"mean": 1.5, "scale": 2.0, "dtype": dt.onnx_code(dtype), "seed": 4.0})
    for x in (y, like.ravel()):
        assert x.dtype == dtype
        assert abs(x.mean(dtype=np.float64) - 1.5) < NORMAL_Z * 2 / math.sqrt(N) + 1e-3
        assert abs(x.var(dtype=np.float64) / 4 - 1) < NORMAL_Z * math.sqrt(2 / N) + 1e-3
        assert abs(np.mean(np.abs(x - 1.5) < 2) - 0.6827) < hoeffding(N, 1.0)  # one sigma


@pytest.mark.parametrize("dtype", dt.FLOATS)
def test_bernoulli_frequencies_follow_p(dtype):
    p = np.repeat(np.array([0.0, 0.1, 0.5, 0.9, 1.0], dtype), N // 5)
    (y,) = ours("Bernoulli", [p], {"seed": 5.0, "dtype": dt.onnx_code("int64")})
    assert y.dtype == np.int64 and set(np.unique(y)) <= {0, 1}
    freq = y.reshape(5, -1).mean(axis=1)
    assert freq[0] == 0 and freq[4] == 1
    np.testing.assert_allclose(freq, [0, 0.1, 0.5, 0.9, 1], atol=hoeffding(N // 5, 1.0))


def test_bernoulli_decomposition_equals_the_reference_with_the_same_seed():
    p = np.random.default_rng(0).random((4, 5)).astype(np.float32)
    for attrs in ({"seed": 11.0}, {"seed": 11.0, "dtype": dt.onnx_code("bool")}):
        np.testing.assert_array_equal(decomposed("Bernoulli", [p], attrs)[0], ours("Bernoulli", [p], attrs)[0])
    assert decomposed("Bernoulli", [p], {})[0].dtype == np.float32


def test_multinomial_frequencies_follow_softmax():
    logits = np.log(np.array([[0.2, 0.0, 0.5, 0.3], [1.0, 1.0, 1.0, 1.0]], np.float32))
    (y,) = ours("Multinomial", [logits], {"sample_size": N // 2, "seed": 9.0, "dtype": dt.onnx_code("int64")})
    assert y.dtype == np.int64 and y.shape == (2, N // 2)
    freq = np.stack([np.bincount(row, minlength=4) / row.size for row in y])
    assert freq[0, 1] == 0  # probability 0 is never drawn
    np.testing.assert_allclose(freq, [[0.2, 0, 0.5, 0.3], [0.25] * 4], atol=hoeffding(N // 2, 1.0))


def test_bad_dtypes_and_shapes_raise():
    with pytest.raises(ShapeError, match="cannot produce dtype int32"):
        ours("RandomUniform", [], {"shape": [2], "dtype": dt.onnx_code("int32")})
    with pytest.raises(ShapeError, match="cannot produce dtype int64"):
        ours("RandomNormalLike", [np.zeros(3, np.int64)], {})
    with pytest.raises(ShapeError, match="rank 2"):
        ours("Multinomial", [np.zeros(3, np.float32)], {})
