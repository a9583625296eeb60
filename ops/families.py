"""Imports every built-in op family so that their ops register."""
from . import (  # noqa: F401
    control,
    conv,
    elementwise,
    indexing,
    linalg,
    loss,
    normalization,
    quantize,
    reduce,
    rnn,
    sequence,
    sequence_models,
    shape,
    signal,
    vision,
)
