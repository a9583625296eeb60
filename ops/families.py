"""Imports every built-in op family so that their ops register."""
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
    sequence,
    shape,
    signal,
    vision,
)
