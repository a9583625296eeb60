"""Plugin discovery through pluggy: entry-point group ``dh``, one broken plugin never
stops the others. pluggy is used to register and find things only; the hot path calls
the backend objects directly."""
from __future__ import annotations

import importlib.metadata
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from .errors import PluginError

PROJECT = "dh"
API_VERSION = (1, 0)
"""The backend API version this core speaks; a plugin with another major is rejected."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


class DHPluginWarning(UserWarning):
    """A plugin failed to load or was rejected; the others still work."""


class HookSpecs:
    """The hooks a dh plugin may implement. Each may gain optional arguments later."""

    @hookspec
    def dh_backends(self) -> list["BackendSpec"]:
        """Backend specs this plugin provides."""

    @hookspec
    def dh_collectives(self) -> list[Any]:
        """Collective communicator factories this plugin provides."""

    @hookspec
    def dh_conformance_manifest(self, backend: str) -> "dict | None":
        """For the named backend: ``{"tolerances": {(op, dtype): (rtol, atol)},
        "xfail": {(op, dtype): reason}, "onnx_xfail": {regex: reason}}`` (dtype ``"*"``
        matches every dtype; a regex is searched in ONNX test case names)."""

    @hookspec
    def dh_op_definitions(self) -> list[type]:
        """OpDef subclasses of custom ops."""


@dataclass
class BackendSpec:
    """What a plugin declares about one backend; ``factory()`` builds it on first use."""

    name: str
    factory: Callable[[], Any]
    api_version: tuple[int, int] = API_VERSION
    description: str = ""
    distribution: str = field(default="", compare=False)
    version: str = field(default="", compare=False)


class Plugins:
    """The loaded plugins and what they declared."""

    def __init__(self, extra: list[Any] | None = None):
        self.pm = pluggy.PluginManager(PROJECT)
        self.pm.add_hookspecs(HookSpecs)
        self.distributions: dict[str, tuple[str, str]] = {}
        self._load_entry_points()
        for plugin in extra or []:
            self.pm.register(plugin)

    def _load_entry_points(self) -> None:
        for ep in importlib.metadata.entry_points(group=PROJECT):
            dist = ep.dist.name if ep.dist else "?"
            version = ep.dist.version if ep.dist else ""
            try:
                plugin = ep.load()
                self.pm.register(plugin, name=ep.name)
            except Exception as exc:  # a broken plugin must not stop the others
                _complain(f"plugin '{ep.name}' ({dist}) failed to load: {type(exc).__name__}: {exc}")
                continue
            self.distributions[ep.name] = (dist, version)

    def _call_each(self, hook_name: str, **kwargs) -> list[tuple[str, Any]]:
        """Call a hook on each plugin separately, so one raising does not hide the rest."""
        results = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                result = impl.function(**kwargs)
            except Exception as exc:
                _complain(f"plugin '{impl.plugin_name}' failed in {hook_name}: {type(exc).__name__}: {exc}")
                continue
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    def backend_specs(self) -> dict[str, BackendSpec]:
        """Backend specs by name, filtered by ``DH_BACKENDS`` and checked for clashes."""
        allow = _allowlist()
        specs: dict[str, BackendSpec] = {}
        for plugin_name, declared in self._call_each("dh_backends"):
            dist, version = self.distributions.get(plugin_name, (plugin_name, ""))
            for spec in declared:
                if allow is not None and spec.name not in allow:
                    continue
                if spec.api_version[0] != API_VERSION[0]:
                    _complain(
                        f"plugin '{plugin_name}' backend '{spec.name}' speaks API "
                        f"{spec.api_version[0]}.{spec.api_version[1]}; this dh speaks "
                        f"{API_VERSION[0]}.{API_VERSION[1]}: rejected")
                    continue
                spec.distribution = spec.distribution or dist
                spec.version = spec.version or version
                if spec.name in specs:
                    raise PluginError(
                        f"two plugins define backend '{spec.name}': "
                        f"{specs[spec.name].distribution} and {spec.distribution}")
                specs[spec.name] = spec
        return specs

    def manifest(self, backend: str) -> dict:
        """The merged conformance manifest of a backend: each section (``tolerances``,
        ``xfail``, ``onnx_xfail``, ``onnx_random``, ``onnx_pending``) is a dict, merged across plugins."""
        merged: dict = {"tolerances": {}, "xfail": {}, "onnx_xfail": {}, "onnx_random": {}, "onnx_pending": {}}
        for _, part in self._call_each("dh_conformance_manifest", backend=backend):
            for section, entries in part.items():
                merged.setdefault(section, {}).update(entries)
        return merged

    def op_definitions(self) -> list[type]:
        return [cls for _, classes in self._call_each("dh_op_definitions") for cls in classes]

    def collectives(self) -> list[Any]:
        return [c for _, found in self._call_each("dh_collectives") for c in found]


def _allowlist() -> set[str] | None:
    raw = os.environ.get("DH_BACKENDS", "").strip()
    return {n.strip() for n in raw.split(",") if n.strip()} if raw else None


def _complain(message: str) -> None:
    if os.environ.get("DH_STRICT_PLUGINS", "") not in ("", "0"):
        raise PluginError(message)
    warnings.warn(message, DHPluginWarning, stacklevel=3)


_plugins: Plugins | None = None


def plugins() -> Plugins:
    """The process-wide plugin set, loaded on first use."""
    global _plugins
    if _plugins is None:
        _plugins = Plugins()
    return _plugins


def reset() -> None:
    """Forget the loaded plugins and backends (tests, or after installing a plugin)."""
    global _plugins
    _plugins = None
    from . import backends

    backends.reset()


def load_op_definitions() -> list[type]:
    return plugins().op_definitions()
