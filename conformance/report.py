"""The conformance report: a matrix op x dtype -> status, the failures with their
shrunk examples, and the runtime checks; as JSON, Markdown and a rich text table."""
from __future__ import annotations

import io
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from dh_core.dtypes import ALL

STATUSES = ("pass", "fail", "xfail", "unsupported")
SYMBOLS = {"pass": "✓", "fail": "✗", "xfail": "x", "unsupported": "·"}
STYLES = {"pass": "green", "fail": "bold red", "xfail": "yellow", "unsupported": "dim", "skip": "dim"}
SHORT = {"float16": "f16", "float32": "f32", "float64": "f64", "int8": "i8", "int16": "i16",
         "int32": "i32", "int64": "i64", "uint8": "u8", "uint16": "u16", "uint32": "u32",
         "uint64": "u64", "bool": "bool"}
LEGEND = "✓ pass, ✗ fail, x expected failure (manifest), · unsupported, blank: dtype not sampled"


@dataclass
class Failure:
    """A failed case: the shrunk example (``Sample.describe()``), the command that
    replays it, and what went wrong."""

    op: str
    dtype: str
    example: str
    reproduce: str
    message: str = ""


@dataclass
class Report:
    """The result of a conformance run on one backend.

    ``ops`` maps op -> dtype -> "pass" | "fail" | "xfail" | "unsupported"; ``runtime``
    maps a runtime check -> "pass" | "fail" | "skip" (a check that does not apply, such
    as transfers on a one-device backend), with ``runtime_messages`` saying why.
    """

    backend: str
    ops: dict[str, dict[str, str]] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    runtime: dict[str, str] = field(default_factory=dict)
    runtime_messages: dict[str, str] = field(default_factory=dict)
    onnx_node: dict[str, str] = field(default_factory=dict)
    """ONNX node test case -> "pass" | "fail" | "xfail" | "unsupported" (tier 2)."""
    onnx_node_messages: dict[str, str] = field(default_factory=dict)
    mode: str = "quick"
    seed: int | None = None
    seconds: float = 0.0

    def add(self, op: str, dtype: str, status: str, failure: Failure | None = None) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status '{status}'")
        self.ops.setdefault(op, {})[dtype] = status
        if failure is not None:
            self.failures.append(failure)

    @property
    def summary(self) -> dict[str, int]:
        """Counts of the op x dtype matrix."""
        return _counts(s for row in self.ops.values() for s in row.values())

    @property
    def onnx_node_summary(self) -> dict[str, int]:
        """Counts of the ONNX node test cases."""
        return _counts(self.onnx_node.values())

    @property
    def exit_code(self) -> int:
        """0 when nothing failed unexpectedly and no expected failure passed, else 1."""
        failed = any(s == "fail" for row in self.ops.values() for s in row.values())
        return 1 if failed or "fail" in self.runtime.values() or "fail" in self.onnx_node.values() else 0

    @property
    def dtypes(self) -> list[str]:
        """The dtype columns: every dtype some op was run with, in IR order."""
        seen = {d for row in self.ops.values() for d in row}
        return [d for d in ALL if d in seen] + sorted(seen - set(ALL))

    # -- JSON ------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "mode": self.mode,
            "seed": self.seed,
            "seconds": round(self.seconds, 3),
            "summary": self.summary,
            "ops": {op: dict(row) for op, row in sorted(self.ops.items())},
            "failures": [asdict(f) for f in self.failures],
            "runtime": dict(self.runtime),
            "runtime_messages": dict(self.runtime_messages),
            "onnx_node": {
                "summary": self.onnx_node_summary,
                "cases": dict(sorted(self.onnx_node.items())),
                "failures": [{"case": c, "message": self.onnx_node_messages.get(c, "")}
                             for c, st in sorted(self.onnx_node.items()) if st == "fail"],
            },
        }

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The report as JSON; written to ``path`` when given."""
        text = json.dumps(self.to_dict(), indent=2, ensure_ascii=False)
        return _write(text + "\n", path)

    # -- Markdown ----------------------------------------------------------------------
    def to_markdown(self, path: str | os.PathLike | None = None) -> str:
        """The report as Markdown (matrix, failures, runtime checks); written to ``path`` when given."""
        dtypes = self.dtypes
        seed = f", seed {self.seed}" if self.seed is not None else ""
        lines = [f"# dh conformance: {self.backend}", "", f"{self.mode} mode{seed}: {self.summary_line()}", "",
                 "| op | " + " | ".join(dtypes) + " |",
                 "| --- |" + " :---: |" * len(dtypes)]
        for op, row in sorted(self.ops.items()):
            cells = [SYMBOLS[row[d]] if d in row else "" for d in dtypes]
            lines.append(f"| {op} | " + " | ".join(cells) + " |")
        lines += ["", LEGEND]
        if self.failures:
            lines += ["", "## Failures"]
            for f in self.failures:
                lines += ["", f"### {f.op} {f.dtype}", "", "```", f.message, "```"]
                if f.example:
                    lines += ["", f"Example: `{f.example}`"]
                lines += ["", f"Reproduce: `{f.reproduce}`"]
        if self.runtime:
            lines += ["", "## Runtime checks", "", "| check | result | detail |", "| --- | --- | --- |"]
            for name, status in self.runtime.items():
                detail = self.runtime_messages.get(name, "").replace("|", "\\|").replace("\n", " ")
                lines.append(f"| {name} | {status} | {detail} |")
        if self.onnx_node:
            lines += ["", "## ONNX node test cases", "", self._onnx_node_line()]
            for case, message in self._onnx_node_failures():
                lines += ["", f"- `{case}`: {message}"]
        return _write("\n".join(lines) + "\n", path)

    # -- text ----------------------------------------------------------------------------
    def __rich_console__(self, console, options):
        from rich.table import Table
        from rich.text import Text

        dtypes = self.dtypes
        matrix = Table()
        matrix.add_column("op", style="bold")
        for d in dtypes:
            matrix.add_column(SHORT.get(d, d), justify="center")
        for op, row in sorted(self.ops.items()):
            matrix.add_row(op, *[Text(SYMBOLS[row[d]], style=STYLES[row[d]]) if d in row else ""
                                 for d in dtypes])
        yield Text(f"dh conformance: {self.backend} ({self.mode} mode)", style="bold")
        yield matrix
        yield Text(LEGEND, style="dim")
        for f in self.failures:
            yield Text(f"\nFAIL {f.op} {f.dtype}", style="bold red")
            yield Text(f.message)
            if f.example:
                yield Text(f"example: {f.example}")
            yield Text(f"reproduce: {f.reproduce}", style="cyan")
        if self.runtime:
            checks = Table(title="runtime checks")
            checks.add_column("check", style="bold")
            checks.add_column("result")
            checks.add_column("detail")
            for name, status in self.runtime.items():
                checks.add_row(name, Text(status, style=STYLES.get(status, "")), self.runtime_messages.get(name, ""))
            yield checks
        if self.onnx_node:
            yield Text(self._onnx_node_line(), style="bold")
            for case, message in self._onnx_node_failures():
                yield Text(f"FAIL {case}: {message}", style="red")
        yield Text(self.summary_line(), style="bold red" if self.exit_code else "bold green")

    def _onnx_node_line(self) -> str:
        s = self.onnx_node_summary
        return (f"ONNX node test cases: {s['passed']} passed, {s['failed']} failed, "
                f"{s['xfailed']} expected failures, {s['unsupported']} unsupported")

    def _onnx_node_failures(self) -> list[tuple[str, str]]:
        return [(c, self.onnx_node_messages.get(c, "")) for c, st in sorted(self.onnx_node.items()) if st == "fail"]

    def summary_line(self) -> str:
        """One line: the counts of the matrix and of the runtime checks, and the time."""
        s = self.summary
        line = (f"{s['passed']} passed, {s['failed']} failed, {s['xfailed']} expected failures, "
                f"{s['unsupported']} unsupported")
        if self.runtime:
            statuses = list(self.runtime.values())
            line += (f"; runtime checks: {statuses.count('pass')} passed, {statuses.count('fail')} failed, "
                     f"{statuses.count('skip')} skipped")
        if self.onnx_node:
            n = self.onnx_node_summary
            line += f"; ONNX node cases: {n['passed']} passed, {n['failed']} failed"
        return f"{line} ({self.seconds:.1f} s)"

    def to_text(self, width: int = 120) -> str:
        """The report as plain text: the rich matrix table, failures, runtime checks."""
        from rich.console import Console

        out = io.StringIO()
        Console(file=out, width=width, color_system=None, highlight=False).print(self)
        return out.getvalue()


def _counts(statuses) -> dict[str, int]:
    counts = {"passed": 0, "failed": 0, "xfailed": 0, "unsupported": 0}
    key = {"pass": "passed", "fail": "failed", "xfail": "xfailed", "unsupported": "unsupported"}
    for status in statuses:
        counts[key[status]] += 1
    return counts


def _write(text: str, path: str | os.PathLike | None) -> str:
    if path is not None:
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    return text
