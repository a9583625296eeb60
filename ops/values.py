"""Type-constraint strings for values that are not plain tensors: sequences and optionals.

A constraint lists type keys (:func:`dh_core.ir.type_key`): ``"float32"`` for a tensor,
``"seq(float32)"`` for a sequence of tensors, ``"optional(float32)"`` and
``"optional(seq(float32))"`` for optionals.
"""
from __future__ import annotations

from dh_core import dtypes as dt

ELEMENT_DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "uint16",
                  "uint32", "uint64", "bool")
"""The tensor dtypes ONNX allows inside every sequence and optional type constraint."""

SEQUENCES = tuple(f"seq({d})" for d in ELEMENT_DTYPES)
OPTIONAL_TENSORS = tuple(f"optional({d})" for d in ELEMENT_DTYPES)
OPTIONAL_SEQUENCES = tuple(f"optional({s})" for s in SEQUENCES)
OPTIONALS = OPTIONAL_TENSORS + OPTIONAL_SEQUENCES
ANY_VALUE = dt.ALL + SEQUENCES + OPTIONALS
"""Tensors of every IR dtype, sequences and optionals (If, Loop, Identity)."""
TENSOR_OR_SEQUENCE = dt.ALL + SEQUENCES
