"""The op library: one OpDef per op, grouped by family (installed as ``dh_core.ops``)."""
from . import registry
from .base import REQUIRED, Attr, Decomposer, InferContext, OpDef, Param
from .registry import all_ops, find, get, register

__all__ = ["Attr", "Decomposer", "InferContext", "OpDef", "Param", "REQUIRED",
           "all_ops", "find", "get", "register", "registry"]
