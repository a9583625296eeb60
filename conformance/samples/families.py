"""Imports every family of sample generators so that they register."""
from . import (  # noqa: F401
    conv,
    elementwise,
    linalg,
    normalization,
    reduce,
    rnn,
    shape,
)
