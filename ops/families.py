"""Imports every built-in op family so that their ops register."""
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
