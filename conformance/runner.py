"""Tier 1 of the conformance suite: op properties, checked with hypothesis.

For each op of the library that has a sample generator and each dtype it is sampled
with, hypothesis draws samples; each one becomes a one-node graph that the backend
under test compiles and runs directly (no Session, so no CPU fallback), and every
output is compared with the op's numpy reference (for random ops: dtype and shape,
then a distribution check and seeded reproducibility, see ``check_random``). ``run_suite`` does this for every
case and adds the runtime checks; ``check_case`` is one case, shared with the pytest
plugin.
"""
from __future__ import annotations

import random
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from dh_core import backends as backend_registry
from dh_core.errors import DeviceError, DHError
from dh_core.ir import Graph, Node, SequenceType, TensorType, Value
from dh_core.ops import OpDef, registry
from dh_core.passes import infer_types

from .report import Failure, Report
from .samples import OpSamples, Sample, all_samples

QUICK_EXAMPLES = 10
THOROUGH_EXAMPLES = 100
MESSAGE_LIMIT = 2000
"""Failure messages longer than this are cut (assert_allclose prints whole arrays)."""


class CaseFailure(AssertionError):
    """One sample failed: the backend raised, or an output differs from the reference."""


@dataclass(frozen=True)
class Case:
    """One cell of the matrix: an op at the dtype of its main input."""

    op: str
    dtype: str

    @property
    def id(self) -> str:
        return f"{self.op}-{self.dtype}"


@dataclass(frozen=True)
class Mode:
    """How hard to look: quick (derandomized, few examples) or thorough (random seed,
    many examples). An explicit seed replaces derandomization in either mode."""

    quick: bool = True
    max_examples: int | None = None
    seed: int | None = None

    @property
    def examples(self) -> int:
        if self.max_examples is not None:
            return self.max_examples
        return QUICK_EXAMPLES if self.quick else THOROUGH_EXAMPLES

    @classmethod
    def make(cls, quick: bool = True, max_examples: int | None = None, seed: int | None = None) -> Mode:
        """A mode; thorough mode without a seed draws one, so that a failure can be replayed."""
        if seed is None and not quick:
            seed = random.SystemRandom().randrange(2**32)
        return cls(quick, max_examples, seed)

    def command(self, backend: str, case: Case) -> str:
        """The command line that replays one case."""
        parts = [f"dh conformance --backend {backend} --op {case.op} --dtype {case.dtype}"]
        if not self.quick:
            parts.append("--thorough")
        if self.seed is not None:
            parts.append(f"--seed {self.seed}")
        if self.max_examples is not None:
            parts.append(f"--max-examples {self.max_examples}")
        return " ".join(parts)


@dataclass
class CaseResult:
    """What one case gave: "pass", "fail" or "unsupported" (before the manifest's
    expected failures are applied), the failure, and how many samples the backend ran."""

    case: Case
    status: str
    failure: Failure | None = None
    examples: int = 0


# -- what to run ----------------------------------------------------------------------
def cases(ops: Sequence[str] | None = None, dtypes: Sequence[str] | None = None) -> list[Case]:
    """Every (op, dtype) of the op library that has samples, optionally filtered."""
    known = {op.name for op in registry.all_ops()}
    sampled = all_samples()
    names = sorted(known & set(sampled))
    if ops is not None:
        unknown = [op for op in ops if op not in known]
        if unknown:
            raise DHError(f"unknown op {unknown[0]}: not in the op library")
        missing = [op for op in ops if op not in sampled]
        if missing:
            raise DHError(f"op {missing[0]} has no sample generator in dh_core.conformance.samples")
        names = [n for n in names if n in set(ops)]
    return [Case(op, dtype) for op in names for dtype in sampled[op].dtypes
            if dtypes is None or dtype in dtypes]


def manifest_of(backend_name: str) -> dict:
    """The backend's conformance manifest from its plugin: tolerances and xfails."""
    from dh_core.plugins import plugins

    return plugins().manifest(backend_name)


def expected_failure(manifest: dict, case: Case) -> str | None:
    """The manifest's reason why a case is expected to fail, or None."""
    xfail = manifest.get("xfail", {})
    return xfail.get((case.op, case.dtype), xfail.get((case.op, "*")))


def tolerance(manifest: dict, op_samples: OpSamples, case: Case) -> tuple[float, float]:
    """(rtol, atol) of a case: the manifest's override, else the sample's tolerance."""
    overrides = manifest.get("tolerances", {})
    found = overrides.get((case.op, case.dtype), overrides.get((case.op, "*")))
    return tuple(found) if found is not None else op_samples.tolerance_for(case.dtype)


# -- one sample -------------------------------------------------------------------------
def one_node_graph(op: str, sample: Sample, n_outputs: int | None = None) -> Graph:
    """A graph of one node whose inputs are the sample's arrays (omitted ones left out).

    It has ``n_outputs`` outputs; by default the sample's count, else the schema's
    required outputs (as GraphBuilder does)."""
    if n_outputs is None:
        n_outputs = sample.n_outputs if sample.n_outputs is not None else default_outputs(op)
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(sample.inputs)]
    node = Node(op, names, [f"y{i}" for i in range(n_outputs)], dict(sample.attrs), name=op,
                domain=op_def(op).domain)
    inputs = [Value(n, value_type(x)) for n, x in zip(names, sample.inputs) if n]
    inputs += [Value(n, value_type(x)) for n, x in sample.outer.items()]
    graph = Graph([node], inputs, [Value(o) for o in node.outputs], name=f"conformance_{op}")
    try:
        infer_types(graph)
    except (DHError, ValueError, TypeError, KeyError, IndexError):
        pass  # output types stay unknown; the op library's own tests cover inference
    return graph


def op_def(op: str) -> OpDef:
    """The library op of that name: the ai.onnx one, else the one of another domain
    (samples are registered by op name)."""
    found = [o for o in registry.all_ops() if o.name == op]
    if not found:
        raise DHError(f"unknown op {op}: not in the op library")
    return found[0]


def value_type(x: Any) -> TensorType | SequenceType:
    """The type of a sample value: a tensor, or a sequence for a list of arrays."""
    if isinstance(x, list):
        return SequenceType(TensorType(x[0].dtype.name) if x else None)
    return TensorType(x.dtype.name, x.shape)


def default_outputs(op: str) -> int:
    """How many outputs a node of the op has when nobody says: its required ones."""
    opdef = op_def(op)
    return sum(1 for p in opdef.outputs if not p.optional and not p.variadic) or 1


def input_types(graph: Graph) -> list[TensorType | None]:
    node = graph.nodes[0]
    return [graph.value_types.get(n) if n else None for n in node.inputs]


def run_on_backend(backend: Any, device: Any, graph: Graph, sample: Sample) -> list[np.ndarray]:
    """Compile the graph on the backend and run the sample through it, host to host."""
    arrays = [x for x in sample.inputs if x is not None] + list(sample.outer.values())
    stage = "compile"
    try:
        exe = backend.compile(graph, device)
        stage = "to_device"
        buffers = [_map_value(lambda a: backend.to_device(a, device), x) for x in arrays]
        stage = "run"
        results = exe.run(buffers)
        stage = "to_host"
        return [_map_value(backend.to_host, r) for r in results]
    except Exception as exc:
        raise CaseFailure(f"the backend raised in {stage}: {type(exc).__name__}: {exc}") from exc


def _map_value(fn: Callable[[Any], Any], value: Any) -> Any:
    """``fn`` applied to a tensor, to each tensor of a sequence; None stays None."""
    if value is None:
        return None
    if isinstance(value, list):
        return [fn(x) for x in value]
    return fn(value)


def reference_outputs(op: str, sample: Sample) -> list[np.ndarray]:
    """The op's numpy reference on a sample: every output it produces, or the
    sample's ``n_outputs`` first ones."""
    node = Node(op, [f"x{i}" if x is not None else "" for i, x in enumerate(sample.inputs)], ["y0"],
                dict(sample.attrs), name=op, domain=op_def(op).domain)
    try:
        results = op_def(op).run_reference(node, list(sample.inputs), dict(sample.outer))
    except Exception as exc:
        raise CaseFailure(f"the numpy reference raised (a bug of the op library or its samples): "
                          f"{type(exc).__name__}: {exc}") from exc
    return results if sample.n_outputs is None else results[:sample.n_outputs]


def compare(actual: Sequence[np.ndarray], expected: Sequence[np.ndarray], rtol: float, atol: float,
            dtype: str) -> None:
    """Raise CaseFailure unless every output has the reference's dtype, shape and values
    (floats within tolerance, nan equal to nan; integers and bools exact)."""
    if len(actual) != len(expected):
        raise CaseFailure(f"the backend returned {len(actual)} outputs, the reference {len(expected)}")
    for i, (got, want) in enumerate(zip(actual, expected)):
        if want is None or got is None:
            if (want is None) != (got is None):
                raise CaseFailure(f"output {i} is {'absent' if got is None else 'present'}; the reference's "
                                  f"is {'absent' if want is None else 'present'}")
            continue
        if isinstance(want, list):
            if not isinstance(got, list) or len(got) != len(want):
                raise CaseFailure(f"output {i} is not a sequence of {len(want)} tensors like the reference's")
            compare(got, want, rtol, atol, dtype)
            continue
        got = np.asarray(got)
        if got.dtype != want.dtype:
            raise CaseFailure(f"output {i} has dtype {got.dtype}, the reference {want.dtype}")
        if got.shape != want.shape:
            raise CaseFailure(f"output {i} has shape {list(got.shape)}, the reference {list(want.shape)}")
        if want.dtype.kind == "f":
            r, a = (rtol, atol) if np.dtype(dtype).kind == "f" else _default_tolerance(want.dtype.name)
            try:
                np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=r, atol=a,
                                           equal_nan=True, err_msg=f"output {i}")
            except AssertionError as exc:
                raise CaseFailure(_cut(str(exc).strip())) from None
        elif not np.array_equal(got, want):
            try:
                np.testing.assert_array_equal(got, want, err_msg=f"output {i}")
            except AssertionError as exc:
                raise CaseFailure(_cut(str(exc).strip())) from None


def check_random(op_samples: OpSamples, sample: Sample, actual: Sequence[np.ndarray],
                 expected: Sequence[np.ndarray], rerun: Callable[[], list[np.ndarray]]) -> None:
    """Judge the outputs of a random op, whose values no reference predicts: dtypes and
    shapes as the reference's, values by the op's distribution check, and a seeded
    sample reproducible (``rerun`` compiles and runs it again on the backend)."""
    if len(actual) != len(expected):
        raise CaseFailure(f"the backend returned {len(actual)} outputs, the reference {len(expected)}")
    for i, (got, want) in enumerate(zip(actual, expected)):
        got = np.asarray(got)
        if got.dtype != want.dtype or got.shape != want.shape:
            raise CaseFailure(f"output {i} is {got.dtype} {list(got.shape)}, the reference "
                              f"{want.dtype} {list(want.shape)}")
    try:
        op_samples.random(sample, [np.asarray(a) for a in actual])
    except AssertionError as exc:
        raise CaseFailure(_cut(f"the random values fail their distribution check: {exc}")) from None
    if sample.attrs.get("seed") is not None:
        for i, (first, again) in enumerate(zip(actual, rerun())):
            if not np.array_equal(np.asarray(first), np.asarray(again)):
                raise CaseFailure(f"output {i}: the same seed gave other values when run again")


def _default_tolerance(dtype: str) -> tuple[float, float]:
    from .samples import DEFAULT_TOLERANCE

    return DEFAULT_TOLERANCE.get(dtype, (0.0, 0.0))


@contextmanager
def _quiet() -> Iterator[None]:
    """Silence numpy's floating-point warnings: nan and inf are drawn on purpose."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        yield


def _cut(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + " ..."


# -- one case -----------------------------------------------------------------------------
def _settings(mode: Mode, examples: int, shrink: bool):
    from hypothesis import HealthCheck, Phase, Verbosity, settings

    phases = [Phase.explicit, Phase.generate] + ([Phase.shrink] if shrink else [])
    return settings(max_examples=examples, derandomize=mode.seed is None, database=None, deadline=None,
                    phases=phases, report_multiple_bugs=False, print_blob=False,
                    verbosity=Verbosity.quiet,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


def _hypothesis_run(strategy: Any, body: Callable[[Sample], None], mode: Mode, examples: int,
                    shrink: bool) -> None:
    from hypothesis import given, seed

    test = _settings(mode, examples, shrink)(given(strategy)(body))
    if mode.seed is not None:
        test = seed(mode.seed)(test)
    test()


def first_sample(strategy: Any, mode: Mode) -> Sample:
    """The first sample hypothesis draws (used to ask the backend whether it claims the case)."""
    drawn: list[Sample] = []

    def keep(sample: Sample) -> None:
        drawn.append(sample)

    _hypothesis_run(strategy, keep, mode, 1, shrink=False)
    return drawn[0]


def check_case(backend: Any, case: Case, *, mode: Mode | None = None, manifest: dict | None = None,
               expect_failure: bool = False) -> CaseResult:
    """Run one (op, dtype) case on a backend object; failures carry hypothesis's shrunk
    sample. The case is unsupported when the backend declines the first sample drawn
    (or every sample). ``expect_failure`` skips shrinking (the manifest says it fails)."""
    mode = mode or Mode()
    manifest = manifest if manifest is not None else {}
    op_samples = all_samples()[case.op]
    rtol, atol = tolerance(manifest, op_samples, case)
    device = backend.devices()[0]
    reproduce = mode.command(backend.name, case)
    try:
        strategy = op_samples.strategy(case.dtype)
        with _quiet():
            probe = one_node_graph(case.op, first_sample(strategy, mode))
        if not backend.supports(probe.nodes[0], input_types(probe)):
            return CaseResult(case, "unsupported")
    except Exception as exc:
        return CaseResult(case, "fail", Failure(case.op, case.dtype, "(no sample)", reproduce,
                                          _cut(f"drawing a sample or asking supports() raised: "
                                               f"{type(exc).__name__}: {exc}")))
    state = {"ran": 0, "failed": None}

    def body(sample: Sample) -> None:
        try:
            expected = reference_outputs(case.op, sample)
            graph = one_node_graph(case.op, sample, len(expected))
            if not backend.supports(graph.nodes[0], input_types(graph)):
                return
            state["ran"] += 1
            actual = run_on_backend(backend, device, graph, sample)
            if op_samples.random is None:
                compare(actual, expected, rtol, atol, case.dtype)
            else:
                check_random(op_samples, sample, actual, expected,
                             lambda: run_on_backend(backend, device, one_node_graph(case.op, sample, len(expected)),
                                                    sample))
        except Exception:
            state["failed"] = sample
            raise

    try:
        with _quiet():
            _hypothesis_run(strategy, body, mode, mode.examples, shrink=not expect_failure)
    except Exception as exc:
        sample = state["failed"]
        example = sample.describe() if sample is not None else "(no sample)"
        message = str(exc) if isinstance(exc, CaseFailure) else f"{type(exc).__name__}: {exc}"
        return CaseResult(case, "fail", Failure(case.op, case.dtype, example, reproduce, _cut(message)), state["ran"])
    return CaseResult(case, "pass" if state["ran"] else "unsupported", None, state["ran"])


# -- the suite ----------------------------------------------------------------------------
def run_suite(backend: Any, *, quick: bool = True, ops: list[str] | None = None,
              dtypes: list[str] | None = None, progress: bool = False, max_examples: int | None = None,
              seed: int | None = None, manifest: dict | None = None, runtime: bool | None = None,
              onnx_node: bool | None = None) -> Report:
    """Run the conformance suite on a backend (a name or a backend object).

    ``quick`` is derandomized with few examples (CI); thorough mode draws many, from
    ``seed`` (random when None, and reported). ``ops``/``dtypes`` narrow the op matrix.
    ``manifest`` replaces the plugin's manifest (tests). ``runtime`` runs the runtime
    checks and ``onnx_node`` the ONNX node test cases (of the ``ops`` given, if any); by
    default both run when no op filter is given.
    """
    from . import onnx_node as tier2
    from . import runtime_checks

    backend = backend_registry.resolve(backend)
    reason = backend.available()
    if reason is not True:
        raise DeviceError(f"backend '{backend.name}' is not available: {reason}")
    if manifest is None:
        manifest = manifest_of(backend.name)
    mode = Mode.make(quick, max_examples, seed)
    todo = cases(ops, dtypes)
    with_runtime = ops is None if runtime is None else runtime
    checks = list(runtime_checks.CHECKS) if with_runtime else []
    node_cases = tier2.selected_cases(ops) if (ops is None if onnx_node is None else onnx_node) else []
    report = Report(backend.name, mode="quick" if quick else "thorough", seed=mode.seed)
    start = time.perf_counter()
    with _progress(progress, len(todo) + len(checks) + len(node_cases)) as bar:
        for case in todo:
            bar.working_on(f"{case.op} {case.dtype}")
            xfail = expected_failure(manifest, case)
            result = check_case(backend, case, mode=mode, manifest=manifest, expect_failure=xfail is not None)
            report.add(case.op, case.dtype, *_apply_xfail(result, xfail, mode.command(backend.name, case)))
            bar.done()
        for name in checks:
            bar.working_on(f"runtime: {name}")
            outcome = runtime_checks.run_check(backend, name)
            report.runtime[name] = outcome.status
            report.runtime_messages[name] = outcome.message
            bar.done()
        for node_case in node_cases:
            bar.working_on(f"onnx: {node_case.name}")
            result = tier2.apply_expectation(tier2.run_case(backend, node_case),
                                             *tier2.expected_failure(manifest, node_case.name))
            report.onnx_node[result.case] = result.status
            if result.message:
                report.onnx_node_messages[result.case] = result.message
            bar.done()
    report.seconds = time.perf_counter() - start
    return report


def _apply_xfail(result: CaseResult, reason: str | None, reproduce: str) -> tuple[str, Failure | None]:
    """The matrix status and failure of a case once the manifest's xfail is applied:
    an expected failure that passes is a failure (strict)."""
    if reason is None or result.status == "unsupported":
        return result.status, result.failure
    if result.status == "fail":
        return "xfail", None
    return "fail", Failure(result.case.op, result.case.dtype, "", reproduce,
                           f"unexpected pass: the manifest expects a failure ({reason})")


class _Bar:
    """One step of the rich progress bar per case and runtime check (a no-op when off)."""

    def __init__(self, progress: Any = None, task: Any = None):
        self.progress, self.task = progress, task

    def working_on(self, description: str) -> None:
        if self.progress is not None:
            self.progress.update(self.task, description=description)

    def done(self) -> None:
        if self.progress is not None:
            self.progress.advance(self.task)


@contextmanager
def _progress(enabled: bool, total: int) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]conformance[/bold]"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TextColumn("{task.description}"), console=Console(stderr=True)) as bar:
        task = bar.add_task("", total=total)
        yield _Bar(bar, task)
        bar.update(task, description="done")
