"""Imports every family of sample generators so that they register."""
from . import (  # noqa: F401
    conv,
    elementwise,
    indexing,
    linalg,
    ml,
    normalization,
    quantize,
    reduce,
    rnn,
    shape,
    signal,
    strings,
    vision,
)
