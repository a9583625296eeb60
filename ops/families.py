"""Imports every built-in op family so that their ops register."""
from . import (  # noqa: F401
    conv,
    elementwise,
    indexing,
    linalg,
    normalization,
    quantize,
    random,
    reduce,
    rnn,
    sequence_models,
    shape,
    signal,
    vision,
)
