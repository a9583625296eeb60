"""The table of known ops: built-in families plus ops that plugins define."""
from __future__ import annotations

from .base import OpDef

_OPS: dict[tuple[str, str], OpDef] = {}


def register(cls: type[OpDef]) -> type[OpDef]:
    """Class decorator: add an OpDef subclass to the table (one instance per op)."""
    key = (cls.domain, cls.name)
    if key in _OPS and type(_OPS[key]) is not cls:
        raise ValueError(f"op {cls.domain + '.' if cls.domain else ''}{cls.name} is defined twice")
    _OPS[key] = cls()
    return cls


def find(op: str, domain: str = "") -> OpDef | None:
    """The OpDef of an op, or None when it is unknown."""
    _load_families()
    return _OPS.get(("" if domain == "ai.onnx" else domain, op))


def get(op: str, domain: str = "") -> OpDef:
    opdef = find(op, domain)
    if opdef is None:
        raise KeyError(f"unknown op {domain + '.' if domain else ''}{op}")
    return opdef


def all_ops() -> list[OpDef]:
    """Every registered op, sorted by name."""
    _load_families()
    return sorted(_OPS.values(), key=lambda o: (o.domain, o.name))


_loaded = False


def _load_families() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        from . import families  # noqa: F401  (registers the built-in ops)
        from dh_core.plugins import load_op_definitions

        for cls in load_op_definitions():
            register(cls)
