"""The project's typed errors. Each message is one line that names the problem."""
from __future__ import annotations

from collections.abc import Sequence


class DHError(Exception):
    """Base class of every error dh raises on purpose."""


class GraphError(DHError):
    """A graph or model is malformed: unknown op, dangling input, bad attribute."""

    def __init__(self, message: str, node: str | None = None):
        self.node = node
        super().__init__(f"node '{node}': {message}" if node else message)


class ModelLoadError(GraphError):
    """A model file cannot be read or converted."""


class ShapeError(GraphError):
    """Shapes or dtypes of a node's inputs do not fit its op."""


class UnsupportedOpError(DHError):
    """No backend can run a node."""

    def __init__(self, node: str, op: str, dtypes: Sequence[str], tried: Sequence[str]):
        self.node, self.op, self.dtypes, self.tried = node, op, tuple(dtypes), tuple(tried)
        types = ", ".join(self.dtypes) or "no inputs"
        backends = ", ".join(self.tried) or "none"
        super().__init__(
            f"node '{node}': op {op} ({types}) is not supported by any backend tried: {backends}"
        )


class InputError(DHError):
    """A value given to Session.run has the wrong name, shape or dtype."""


class MissingDependencyError(DHError):
    """An optional package that a feature needs is not installed."""

    def __init__(self, feature: str, package: str, extra: str | None = None):
        self.feature, self.package = feature, package
        hint = f"pip install 'dh-core[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}', which is not installed ({hint})")


class DeviceError(DHError):
    """A backend or device failed or is not available."""


class PluginError(DHError):
    """A plugin could not be loaded or clashes with another."""
