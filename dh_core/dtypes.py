"""Element types of the IR: names, groups and numpy equivalents."""
from __future__ import annotations

import ml_dtypes
import numpy as np

FLOATS = ("float16", "float32", "float64")
SIGNED_INTS = ("int8", "int16", "int32", "int64")
UNSIGNED_INTS = ("uint8", "uint16", "uint32", "uint64")
INTS = SIGNED_INTS + UNSIGNED_INTS
NUMERIC = FLOATS + INTS
SIGNED_NUMERIC = FLOATS + SIGNED_INTS
ALL = NUMERIC + ("bool",)

INDEX = ("int32", "int64")

STRING = ("string",)
"""Text, a group of its own (outside ALL and ALL_TYPES, which op constraints use):
numpy object arrays of Python ``str``, as ``onnx.numpy_helper`` gives them."""

# Low-precision types (numpy dtypes from ml_dtypes). They are kept out of the groups
# above, which op constraints use: an op allows them only where it says so.
BFLOAT16 = ("bfloat16",)
FLOAT8 = ("float8e4m3fn", "float8e4m3fnuz", "float8e5m2", "float8e5m2fnuz")
FLOAT8E8M0 = ("float8e8m0",)
FLOAT4 = ("float4e2m1",)
INT4 = ("int4", "uint4")
INT2 = ("int2", "uint2")
SMALL_FLOATS = FLOAT8 + FLOAT8E8M0 + FLOAT4
"""8- and 4-bit floats (those that ``saturate`` and ``round_mode`` of Cast concern)."""
LOW_PRECISION = BFLOAT16 + SMALL_FLOATS + INT4 + INT2
ALL_TYPES = ALL + LOW_PRECISION
"""Every element type of the IR."""

_ML_DTYPES = {
    "bfloat16": ml_dtypes.bfloat16, "float8e4m3fn": ml_dtypes.float8_e4m3fn,
    "float8e4m3fnuz": ml_dtypes.float8_e4m3fnuz, "float8e5m2": ml_dtypes.float8_e5m2,
    "float8e5m2fnuz": ml_dtypes.float8_e5m2fnuz, "float8e8m0": ml_dtypes.float8_e8m0fnu,
    "float4e2m1": ml_dtypes.float4_e2m1fn, "int4": ml_dtypes.int4, "uint4": ml_dtypes.uint4,
    "int2": ml_dtypes.int2, "uint2": ml_dtypes.uint2,
}
_FROM_ML = {np.dtype(v).name: k for k, v in _ML_DTYPES.items()}


def to_numpy(dtype: str) -> np.dtype:
    """The numpy dtype of an IR dtype name."""
    if dtype in STRING:
        return np.dtype(object)
    return np.dtype(_ML_DTYPES.get(dtype, dtype))


def name_of(dtype) -> str:
    """The IR spelling of a numpy dtype's name, unchecked (``float8_e4m3fn`` -> ``float8e4m3fn``;
    object and unicode arrays hold strings)."""
    if np.dtype(dtype).kind in "OU":
        return "string"
    name = np.dtype(dtype).name
    return _FROM_ML.get(name, name)


def from_numpy(dtype) -> str:
    """The IR dtype name of a numpy dtype (or anything np.dtype accepts)."""
    name = name_of(dtype)
    if name not in ALL_TYPES and name not in STRING:
        raise TypeError(f"dtype {name} has no IR equivalent")
    return name


def of(array: np.ndarray) -> str:
    """The IR dtype name of an array."""
    return from_numpy(array.dtype)


def as_ir_array(value) -> np.ndarray:
    """``value`` as an array the IR holds: text becomes an object array of ``str``."""
    arr = np.asarray(value)
    return arr.astype(object) if arr.dtype.kind == "U" else arr


_ONNX_CODES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6,
               "int64": 7, "string": 8, "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13}
_ONNX_CODES.update({"bfloat16": 16, "float8e4m3fn": 17, "float8e4m3fnuz": 18, "float8e5m2": 19,
                    "float8e5m2fnuz": 20, "uint4": 21, "int4": 22, "float4e2m1": 23, "float8e8m0": 24,
                    "uint2": 25, "int2": 26})
_FROM_ONNX = {v: k for k, v in _ONNX_CODES.items()}


def onnx_code(dtype: str) -> int:
    """The ONNX TensorProto element-type code of an IR dtype (the ``to`` of Cast)."""
    return _ONNX_CODES[dtype]


def from_onnx(code: int) -> str:
    """The IR dtype of an ONNX TensorProto element-type code."""
    try:
        return _FROM_ONNX[int(code)]
    except KeyError:
        raise TypeError(f"ONNX element type {code} has no IR equivalent") from None
