"""Backend instances by name, built from the plugins' specs on first use."""
from __future__ import annotations

from typing import Any

from .errors import DeviceError
from .plugins import BackendSpec, plugins

_instances: dict[str, Any] = {}


def specs() -> dict[str, BackendSpec]:
    """Every backend the installed plugins declare (after ``DH_BACKENDS``)."""
    return plugins().backend_specs()


def get(name: str) -> Any:
    """The backend called ``name``, built on first use."""
    if name not in _instances:
        found = specs()
        if name not in found:
            known = ", ".join(sorted(found)) or "none"
            raise DeviceError(f"no backend named '{name}' (installed: {known})")
        try:
            _instances[name] = found[name].factory()
        except Exception as exc:
            raise DeviceError(f"backend '{name}' failed to start: {type(exc).__name__}: {exc}") from exc
    return _instances[name]


def resolve(backend: Any) -> Any:
    """A backend object from a name or an object that already is one."""
    return get(backend) if isinstance(backend, str) else backend


def reset() -> None:
    _instances.clear()
