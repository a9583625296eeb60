"""Samples for the loss functions NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.

Inputs are (N, C) or (N, C, d1, ...), targets int32 or int64 classes in [0, C) with
some set to ``ignore_index`` when one is drawn (negative, a valid class, or past C);
weights, reductions and the optional log_prob output are drawn too.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .linalg import values

LOSS_TOLERANCE = {"float16": (1e-2, 1e-2), "float32": (1e-5, 1e-5), "float64": (1e-10, 1e-10)}
"""Losses sum a few dozen terms: float16 terms round to about 1e-3 each."""


def _loss_sample(dtype: str, *, log_prob_output: bool):
    @st.composite
    def draw(draw_):
        n, c = draw_(st.integers(1, 3)), draw_(st.integers(1, 4))
        spatial = tuple(draw_(st.lists(st.integers(1, 3), max_size=2)))
        x = draw_(values(dtype, (n, c, *spatial), bound=4))
        ignore_index = draw_(st.one_of(st.none(), st.sampled_from([-1, 0, 1, c, -100])))
        choices = list(range(c)) + ([] if ignore_index is None else [ignore_index])
        tdtype = draw_(st.sampled_from(dt.INDEX))
        target = np.array(draw_(st.lists(st.sampled_from(choices), min_size=n * int(np.prod(spatial)),
                                         max_size=n * int(np.prod(spatial)))), tdtype).reshape((n, *spatial))
        inputs = [x, target]
        if draw_(st.booleans()):
            inputs.append(draw_(values(dtype, (c,), bound=2, special=False, nonnegative=True)))
        attrs = {"reduction": draw_(st.sampled_from(["none", "sum", "mean"]))}
        if ignore_index is not None:
            attrs["ignore_index"] = ignore_index
        n_outputs = draw_(st.integers(1, 2)) if log_prob_output else 1
        return Sample(inputs, attrs, n_outputs=n_outputs)

    return draw()


@samples("NegativeLogLikelihoodLoss", dt.FLOATS, LOSS_TOLERANCE)
def negative_log_likelihood_loss(dtype):
    return _loss_sample(dtype, log_prob_output=False)


@samples("SoftmaxCrossEntropyLoss", dt.FLOATS, LOSS_TOLERANCE)
def softmax_cross_entropy_loss(dtype):
    return _loss_sample(dtype, log_prob_output=True)
