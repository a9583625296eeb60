"""Imports every family of sample generators so that they register."""
from . import (  # noqa: F401
    control,
    conv,
    elementwise,
    indexing,
    linalg,
    loss,
    normalization,
    quantize,
    random,
    reduce,
    rnn,
    sequence_models,
    shape,
    signal,
    training,
    vision,
)
