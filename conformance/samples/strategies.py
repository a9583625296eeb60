"""Building blocks for sample strategies: shapes and arrays with special values."""
from __future__ import annotations

import ml_dtypes
import numpy as np
from dh_core.ops import casting
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dh_core import dtypes as dt


def shapes(min_dims: int = 0, max_dims: int = 4, min_side: int = 0, max_side: int = 5):
    """Shapes including scalars (rank 0) and zero-size dims by default."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def broadcast_shapes(num_shapes: int = 2, min_dims: int = 0, max_dims: int = 4,
                     min_side: int = 0, max_side: int = 5):
    """Tuples of shapes that broadcast together."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=min_dims, max_dims=max_dims,
        min_side=min_side, max_side=max_side).map(lambda r: r.input_shapes)


TEXT_ALPHABET = "abA -.é✓"
"""Characters of drawn strings: letters of both cases, a space and a separator, and
non-ASCII ones."""


def texts(max_size: int = 3):
    """Short strings over TEXT_ALPHABET, the empty string included."""
    return st.text(alphabet=TEXT_ALPHABET, max_size=max_size)


def elements(dtype: str, *, special: bool = True, min_value=None, max_value=None):
    """Element values for a dtype: for floats, nan and inf too when ``special``; for
    strings, :func:`texts`.

    Floats default to a moderate range so that sums and products stay finite."""
    if dtype == "string":
        return texts()
    dt = np.dtype(dtype)
    if dt.kind == "b":
        return st.booleans()
    if dt.kind in "iu":
        info = np.iinfo(dt)
        lo = info.min if min_value is None else max(info.min, min_value)
        hi = info.max if max_value is None else min(info.max, max_value)
        return st.integers(lo, hi)
    lo = -100.0 if min_value is None else min_value
    hi = 100.0 if max_value is None else max_value
    width = 16 if dt == np.float16 else 32 if dt == np.float32 else 64
    finite = st.floats(lo, hi, width=width, allow_nan=False, allow_infinity=False)
    if not special:
        return finite
    return st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf]))


def arrays(dtype: str, shape, **element_kwargs):
    """Arrays of a dtype and shape (a shape or a strategy of shapes); strings are object
    arrays of ``str``."""
    if dtype in dt.STRING:
        return hnp.arrays(object, shape, elements=texts())
    if dtype in dt.LOW_PRECISION:
        return low_precision_arrays(dtype, shape, **element_kwargs)
    return hnp.arrays(np.dtype(dtype), shape, elements=elements(dtype, **element_kwargs))


def low_precision_arrays(dtype: str, shape, *, special: bool = True, min_value=None, max_value=None):
    """Arrays of a bfloat16, 8-, 4- or 2-bit dtype: integers over their range; floats
    drawn in float32 within the type's range (and the bounds) and rounded to the type,
    with nan and inf where ``special`` (cast by ONNX's saturating rules)."""
    target = dt.to_numpy(dtype)
    if dtype in dt.INT4 + dt.INT2:
        info = ml_dtypes.iinfo(target)
        lo = int(info.min) if min_value is None else max(int(info.min), int(np.ceil(min_value)))
        hi = int(info.max) if max_value is None else min(int(info.max), int(np.floor(max_value)))
        return hnp.arrays(np.int64, shape, elements=st.integers(lo, hi)).map(lambda a: a.astype(target))
    info = ml_dtypes.finfo(target)
    top = min(100.0, float(info.max))
    lo = (float(info.tiny) if dtype == "float8e8m0" else -top) if min_value is None else min_value
    hi = top if max_value is None else max_value
    finite = st.floats(lo, hi, width=32, allow_nan=False, allow_infinity=False)
    values = st.one_of(finite, st.sampled_from([np.nan, np.inf, -np.inf])) if special else finite
    return hnp.arrays(np.float32, shape, elements=values).map(lambda a: casting.cast(a, dtype))
