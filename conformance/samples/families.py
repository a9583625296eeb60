"""Imports every family of sample generators so that they register."""
from . import (  # noqa: F401
    control,
    conv,
    elementwise,
    indexing,
    linalg,
    normalization,
    quantize,
    reduce,
    rnn,
    shape,
    signal,
    vision,
)
