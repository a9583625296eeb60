"""Tier 3 of the conformance suite: the runtime around the kernels.

Each check takes a backend object and returns a one-line message when it passes; it
raises ``AssertionError`` (or anything else) when it fails, and ``SkipCheck`` when it
does not apply to the backend (transfers on a one-device backend).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dh_core.dtypes import ALL
from dh_core.ir import Graph, Node, TensorType
from dh_core.ops import registry

MODEL_TOLERANCE = (1e-4, 1e-5)
"""(rtol, atol) between a float32 model on the backend and on the reference."""
ROUND_TRIP_SHAPES = ((), (0,), (1,), (7,), (2, 3), (3, 0, 2), (2, 3, 4))


class SkipCheck(Exception):
    """The check does not apply to this backend."""


@dataclass
class CheckResult:
    name: str
    status: str
    """"pass", "fail" or "skip"."""
    message: str


CHECKS: dict[str, Callable[[Any], str]] = {}


def check(name: str):
    """Decorator registering a runtime check under ``name``."""

    def wrap(fn: Callable[[Any], str]) -> Callable[[Any], str]:
        CHECKS[name] = fn
        return fn

    return wrap


def run_check(backend: Any, name: str) -> CheckResult:
    """Run one named check; exceptions become a failure with their text."""
    try:
        return CheckResult(name, "pass", CHECKS[name](backend))
    except SkipCheck as exc:
        return CheckResult(name, "skip", str(exc))
    except AssertionError as exc:
        return CheckResult(name, "fail", str(exc).strip())
    except Exception as exc:
        return CheckResult(name, "fail", f"{type(exc).__name__}: {exc}")


def run_all(backend: Any) -> list[CheckResult]:
    return [run_check(backend, name) for name in CHECKS]


# -- buffers --------------------------------------------------------------------------
def sample_array(dtype: str, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Random values of a dtype, starting with its edge values (extremes, nan, inf, -0.0)."""
    dt = np.dtype(dtype)
    if dt.kind == "b":
        edges = [True, False]
        values = rng.integers(0, 2, shape).astype(dt)
    elif dt.kind in "iu":
        info = np.iinfo(dt)
        edges = [info.min, info.max, 0]
        values = rng.integers(info.min, info.max, shape, dtype=dt, endpoint=True)
    else:
        info = np.finfo(dt)
        edges = [np.nan, np.inf, -np.inf, -0.0, info.max, info.min, info.smallest_subnormal]
        values = (rng.standard_normal(shape) * 100).astype(dt)
    flat = values.reshape(-1)
    n = min(len(edges), flat.size)
    flat[:n] = np.asarray(edges[:n], dtype=dt)
    return values


def _same_bits(got: Any, want: np.ndarray, what: str) -> None:
    got = np.asarray(got)
    assert got.dtype == want.dtype, f"{what}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{what}: shape {list(got.shape)}, expected {list(want.shape)}"
    assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), \
        f"{what}: values changed: {got.tolist()!r} instead of {want.tolist()!r}"


@check("buffer_round_trip")
def buffer_round_trip(backend: Any) -> str:
    """to_device then to_host gives back the same bits, for every dtype and for
    scalar, zero-size and non-contiguous arrays."""
    rng = np.random.default_rng(0)
    device = backend.devices()[0]
    count = 0
    for dtype in ALL:
        for shape in ROUND_TRIP_SHAPES:
            x = sample_array(dtype, shape, rng)
            _same_bits(backend.to_host(backend.to_device(x, device)), x, f"{dtype}{list(shape)}")
            count += 1
        strided = sample_array(dtype, (4, 6), rng)[::2, ::-3].T
        _same_bits(backend.to_host(backend.to_device(strided, device)), strided.copy(),
                   f"{dtype} non-contiguous view")
        count += 1
    return f"{count} arrays over {len(ALL)} dtypes came back bit for bit"


@check("device_transfer")
def device_transfer(backend: Any) -> str:
    """Buffers moved between every pair of the backend's devices keep their values
    (through ``transfer()`` when the backend has it, else through the host)."""
    devices = backend.devices()
    if len(devices) < 2:
        raise SkipCheck(f"one device ({devices[0]}): no transfers to check")
    direct = hasattr(backend, "transfer")
    rng = np.random.default_rng(1)
    count = 0
    for dtype in ALL:
        x = sample_array(dtype, (3, 5), rng)
        for source in devices:
            for target in devices:
                if source == target:
                    continue
                buffer = backend.to_device(x, source)
                moved = backend.transfer(buffer, target) if direct else \
                    backend.to_device(backend.to_host(buffer), target)
                _same_bits(backend.to_host(moved), x, f"{dtype} from {source} to {target}")
                count += 1
    how = "transfer()" if direct else "the host"
    return f"{count} transfers between {len(devices)} devices through {how} kept their values"


# -- graphs ---------------------------------------------------------------------------
def reference_run(graph: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Evaluate a graph node by node with the op library's numpy references."""
    env: dict[str, Any] = dict(graph.initializers)
    env.update(feeds)
    for node in graph.nodes:
        opdef = registry.get(node.op, node.domain)
        outputs = opdef.run_reference(node, [env[n] if n else None for n in node.inputs])
        for name, value in zip(node.outputs, outputs):
            if name:
                env[name] = value
    return [env[v.name] for v in graph.outputs]


def small_mlp() -> tuple[Graph, dict[str, np.ndarray]]:
    """An MLP (MatMul, Add, Relu, Softmax) and a batch for it."""
    from dh_core.zoo import mlp

    x = np.random.default_rng(2).standard_normal((5, 8)).astype(np.float32)
    return mlp((8, 16, 16, 4), seed=2), {"x": x}


def small_cnn() -> tuple[Graph, dict[str, np.ndarray]]:
    """A two-stage ResNet (Conv, BatchNormalization, Relu, MaxPool, Add,
    GlobalAveragePool, Flatten, Gemm) and a batch of images."""
    from dh_core.zoo import resnet

    x = np.random.default_rng(3).standard_normal((2, 3, 16, 16)).astype(np.float32)
    return resnet(blocks=(1, 1), width=4, num_classes=5, image=16, seed=3), {"input": x}


def _assert_close(got: Sequence[np.ndarray], want: Sequence[np.ndarray], what: str,
                  tolerance: tuple[float, float] = MODEL_TOLERANCE) -> float:
    """Assert outputs agree within tolerance (one line naming the worst element when
    not); returns the largest absolute difference."""
    assert len(got) == len(want), f"{what}: {len(got)} outputs instead of {len(want)}"
    rtol, atol = tolerance
    worst = 0.0
    for i, (g, w) in enumerate(zip(got, want)):
        g = np.asarray(g)
        assert g.dtype == w.dtype and g.shape == w.shape, \
            f"{what}: output {i} is {g.dtype}{list(g.shape)}, expected {w.dtype}{list(w.shape)}"
        diff = np.abs(g.astype(np.float64) - w.astype(np.float64))
        bad = ~np.isclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
        if bad.any():
            at = np.unravel_index(np.argmax(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0)), g.shape)
            raise AssertionError(
                f"{what}: output {i}: {int(bad.sum())} of {g.size} values differ beyond rtol={rtol}, "
                f"atol={atol}; worst at {[int(j) for j in at]}: {g[at]!s} instead of {w[at]!s}")
        finite = diff[np.isfinite(diff)]
        if finite.size:
            worst = max(worst, float(finite.max()))
    return worst


def _on_backend(session: Any, backend: Any) -> tuple[int, int]:
    """How many of a session's nodes its plan puts on ``backend``, and how many in all."""
    parts = session.plan.partitions
    return sum(len(p.nodes) for p in parts if p.backend is backend), sum(len(p.nodes) for p in parts)


def _model_check(backend: Any, build: Callable[[], tuple[Graph, dict[str, np.ndarray]]]) -> str:
    from dh_core.session import Session

    graph, feeds = build()
    session = Session(graph, backends=[backend], fallback="allow")
    mine, total = _on_backend(session, backend)
    if mine == 0:
        raise SkipCheck(f"the backend runs none of the {total} nodes of {graph.name}")
    worst = _assert_close(session.run(feeds), reference_run(graph, feeds), graph.name)
    return f"{graph.name}: {mine} of {total} nodes on {backend.name}, largest difference {worst:.2e}"


@check("mlp")
def mlp_matches_reference(backend: Any) -> str:
    """A small MLP through a Session on the backend equals the reference evaluation."""
    return _model_check(backend, small_mlp)


@check("cnn")
def cnn_matches_reference(backend: Any) -> str:
    """A small CNN through a Session on the backend equals the reference evaluation."""
    return _model_check(backend, small_cnn)


@check("repeated_runs")
def repeated_runs(backend: Any) -> str:
    """The same compiled session run three times gives identical results and leaves
    its inputs untouched."""
    from dh_core.session import Session

    graph, feeds = small_mlp()
    session = Session(graph, backends=[backend], fallback="allow")
    mine, total = _on_backend(session, backend)
    if mine == 0:
        raise SkipCheck(f"the backend runs none of the {total} nodes of {graph.name}")
    kept = {k: v.copy() for k, v in feeds.items()}
    first = session.run(feeds)
    for attempt in (2, 3):
        again = session.run(feeds)
        for i, (a, b) in enumerate(zip(first, again)):
            _same_bits(b, np.asarray(a), f"run {attempt}, output {i}")
    for name, value in kept.items():
        _same_bits(feeds[name], value, f"input '{name}' after the runs")
    return f"{graph.name}: 3 runs ({mine} of {total} nodes on {backend.name}) agree bit for bit"


class EveryOther:
    """The backend under test, claiming only the nodes named in ``claim``: put in front
    of the CPU backend in a Session, it splits a graph into alternating partitions."""

    def __init__(self, backend: Any, claim: set[str]):
        self.backend = backend
        self.claim = claim
        self.name = backend.name
        self.host_memory = getattr(backend, "host_memory", False)
        self.min_partition_size = 1

    def available(self) -> bool | str:
        return self.backend.available()

    def devices(self) -> list:
        return self.backend.devices()

    def supports(self, node: Node, types: Sequence[TensorType | None]) -> bool:
        return node.name in self.claim and self.backend.supports(node, types)

    def compile(self, subgraph: Graph, device: Any) -> Any:
        return self.backend.compile(subgraph, device)

    def to_device(self, array: np.ndarray, device: Any) -> Any:
        return self.backend.to_device(array, device)

    def to_host(self, buffer: Any) -> np.ndarray:
        return self.backend.to_host(buffer)


@check("split_across_backends")
def split_across_backends(backend: Any) -> str:
    """A graph whose nodes alternate between the backend and the CPU backend equals the
    same graph on the CPU alone."""
    from dh_core.session import Session

    graph, feeds = small_mlp()
    alternating = EveryOther(backend, {n.name for n in graph.nodes[::2]})
    split = Session(graph, backends=[alternating, "cpu"], fallback="allow")
    parts = split.plan.partitions
    mine = sum(1 for p in parts if p.backend is alternating)
    if mine == 0:
        raise SkipCheck(f"the backend runs none of the nodes of {graph.name}")
    assert len(parts) >= 3, f"the plan has {len(parts)} partitions; the split needs at least 3"
    alone = Session(graph, backends=["cpu"], fallback="error")
    worst = _assert_close(split.run(feeds), alone.run(feeds), f"{graph.name} split")
    return (f"{graph.name} in {len(parts)} partitions ({mine} on {backend.name}), "
            f"{len(split.plan.copies)} copies, equals the CPU alone (largest difference {worst:.2e})")
