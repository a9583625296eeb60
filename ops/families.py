"""Imports every built-in op family so that their ops register."""
from . import (  # noqa: F401
    conv,
    elementwise,
    linalg,
    normalization,
    reduce,
    rnn,
    shape,
)
