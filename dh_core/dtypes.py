"""Element types of the IR: names, groups and numpy equivalents."""
from __future__ import annotations

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
"""Text, a group of its own (outside ALL, which op constraints use for numbers and bool):
numpy object arrays of Python ``str``, as ``onnx.numpy_helper`` gives them."""


def to_numpy(dtype: str) -> np.dtype:
    """The numpy dtype of an IR dtype name."""
    return np.dtype(object) if dtype in STRING else np.dtype(dtype)


def from_numpy(dtype) -> str:
    """The IR dtype name of a numpy dtype (or anything np.dtype accepts)."""
    np_dtype = np.dtype(dtype)
    if np_dtype.kind in "OU":
        return "string"
    name = np_dtype.name
    if name not in ALL:
        raise TypeError(f"dtype {name} has no IR equivalent")
    return name


def of(array: np.ndarray) -> str:
    """The IR dtype name of an array (object and unicode arrays hold strings)."""
    return from_numpy(array.dtype)


def as_ir_array(value) -> np.ndarray:
    """``value`` as an array the IR holds: text becomes an object array of ``str``."""
    arr = np.asarray(value)
    return arr.astype(object) if arr.dtype.kind == "U" else arr


_ONNX_CODES = {"float32": 1, "uint8": 2, "int8": 3, "uint16": 4, "int16": 5, "int32": 6,
               "int64": 7, "string": 8, "bool": 9, "float16": 10, "float64": 11, "uint32": 12, "uint64": 13}
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
