"""Casts between every IR dtype, low-precision ones included, as ONNX's Cast defines them.

The 8-, 4- and 2-bit types and bfloat16 are ml_dtypes numpy dtypes. Values of those
types are widened exactly first (floats to float32, integers to int64); the rules of
the target type then apply:

* float8 (E4M3FN, E4M3FNUZ, E5M2, E5M2FNUZ): round to nearest even; with ``saturate``
  out-of-range values and infinities clamp to the largest finite value, without it they
  become NaN (infinity for E5M2). The FNUZ types have no negative zero.
* float8e8m0 (powers of two, no zero, no sign): ``round_mode`` up/down/nearest (ties
  up); with ``saturate`` 0 and values below the range give the smallest value, values
  above and infinity the largest; without it they give NaN.
* float4e2m1: round to nearest even, saturating (the type has no infinity or NaN).
* 4- and 2-bit integers: integers wrap around (two's complement); floats in range
  truncate toward zero. ONNX leaves floats out of the target's range open; they convert
  as ml_dtypes converts them, which is what onnx's own test cases and onnx.reference
  expect from the installed ml_dtypes (0 from version 0.7 on, wrapped before).
"""
from __future__ import annotations

import ml_dtypes
import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import GraphError

ROUND_MODES = ("up", "down", "nearest")

_E8M0_BIAS = 127
_E8M0_MAX_CODE = 254
_E8M0_NAN = 255


def bit_width(dtype: str) -> int:
    """Bits of one element of an IR dtype (ml_dtypes stores 4- and 2-bit ones a byte each)."""
    if dtype in dt.INT4 + dt.FLOAT4:
        return 4
    if dtype in dt.INT2:
        return 2
    return dt.to_numpy(dtype).itemsize * 8


def bitcast(x: np.ndarray, to: str) -> np.ndarray:
    """The bits of ``x`` read as dtype ``to`` of the same width."""
    bits = bit_width(to)
    if bits < 8:
        return (x.view(np.uint8) & ((1 << bits) - 1)).view(dt.to_numpy(to))
    if to == "bool":  # only the bytes 0 and 1 are bools; others are undefined in ONNX
        return x.view(np.uint8).astype(np.bool_)
    return x.view(dt.to_numpy(to))


def widen(x: np.ndarray) -> np.ndarray:
    """A low-precision array as float32 (floats) or int64 (integers), exactly; other
    arrays unchanged."""
    name = dt.name_of(x.dtype)
    if name in dt.INT4 + dt.INT2:
        return x.astype(np.int64)
    if name in dt.LOW_PRECISION:
        return x.astype(np.float32)
    return x


def cast(x: np.ndarray, to: str, saturate: int = 1, round_mode: str = "up") -> np.ndarray:
    """``x`` cast to the IR dtype ``to`` by ONNX's Cast rules."""
    if dt.name_of(x.dtype) == to:
        return x.copy()
    target = dt.to_numpy(to)
    x = widen(x)
    if to in dt.FLOAT8:
        if saturate and x.dtype.kind in "fiu":
            limit = float(ml_dtypes.finfo(target).max)
            x = np.clip(x.astype(np.float64) if x.dtype.kind != "f" else x, -limit, limit)
        return x.astype(target)
    if to == "float8e8m0":
        return _to_e8m0(x, saturate, round_mode)
    if to in dt.INT4 + dt.INT2:
        return x.astype(target) if x.dtype.kind == "f" else _wrap(x.astype(np.int64), to)
    return x.astype(target)


def _wrap(x: np.ndarray, to: str) -> np.ndarray:
    """int64 values wrapped into a 4- or 2-bit integer type (two's complement)."""
    bits = 4 if to in dt.INT4 else 2
    low = x & ((1 << bits) - 1)
    if not to.startswith("u"):
        low = low - ((low >> (bits - 1)) & 1) * (1 << bits)
    return low.astype(dt.to_numpy(to))


def check_round_mode(round_mode: str, node: str | None = None) -> None:
    """Raise GraphError unless ``round_mode`` is one ONNX defines."""
    if round_mode not in ROUND_MODES:
        raise GraphError(f"round_mode must be one of {', '.join(ROUND_MODES)}, not '{round_mode}'", node)


def _to_e8m0(x: np.ndarray, saturate: int, round_mode: str) -> np.ndarray:
    """Powers of two: code e stands for 2**(e - 127), code 255 for NaN. Negative values
    (undefined in ONNX) are taken by magnitude."""
    check_round_mode(round_mode)
    v = np.abs(x.astype(np.float64))
    finite = np.isfinite(v) & (v > 0)
    mant, exp = np.frexp(np.where(finite, v, 1.0))  # v = mant * 2**exp, mant in [0.5, 1)
    floor = exp.astype(np.int64) - 1
    if round_mode == "up":
        floor += mant != 0.5
    elif round_mode == "nearest":
        floor += mant >= 0.75
    code = floor + _E8M0_BIAS
    if saturate:
        code = np.clip(code, 0, _E8M0_MAX_CODE)
        code = np.where(v == 0, 0, np.where(np.isinf(v), _E8M0_MAX_CODE, code))
    else:
        code = np.where((code < 0) | (code > _E8M0_MAX_CODE) | ~finite, _E8M0_NAN, code)
    code = np.where(np.isnan(v), _E8M0_NAN, code)
    return code.astype(np.uint8).view(dt.to_numpy("float8e8m0"))
