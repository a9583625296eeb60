"""The ``dh`` command line: list backends, run the conformance suite, run, inspect and convert models.

Heavy modules (onnx, hypothesis, the conformance runner, rich) are imported inside the
subcommands that need them, so ``dh backends`` answers quickly. A user error prints one
line ``dh: error: ...`` on stderr and exits 1; a usage error exits 2 as argparse does.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from . import __version__
from .dtypes import ALL_TYPES as ALL_DTYPES
from .dtypes import STRING
from .errors import DHError, InputError

FALLBACK_HELP = ("what to do with nodes no chosen backend supports: run them on the CPU "
                 "silently (allow), with a warning each (warn), or stop (error)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``dh`` command with ``argv`` (default: the process arguments); returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    with _warnings_as_lines():
        try:
            return args.handler(args)
        except DHError as exc:
            return _fail(str(exc))
        except OSError as exc:
            return _fail(_os_error_text(exc))
        except KeyboardInterrupt:
            print("dh: interrupted", file=sys.stderr)
            return 130


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``dh`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="dh",
        description="dh runs deep-learning models on any hardware: ONNX models in, backend "
                    "plugins (CPU, OpenCL, CuPy, FPGA) underneath, one conformance suite to prove a device.",
        epilog="Run 'dh COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"dh {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = _command(commands, "backends", "list the installed backends, whether they are available and their devices",
                 "Lists every backend the installed plugins declare (after DH_BACKENDS), with its\n"
                 "package and version, whether it is available (or why not) and its devices.",
                 "examples:\n  dh backends\n  dh backends --json\n  DH_BACKENDS=cpu dh backends")
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(handler=cmd_backends)

    p = _command(commands, "conformance", "run the conformance suite on a backend",
                 "Runs the op conformance suite on a backend: for each op and dtype it claims,\n"
                 "hypothesis draws cases and compares the backend with the reference; then ONNX's\n"
                 "own node test cases (from the installed onnx package) and runtime checks. Prints the\n"
                 "op x dtype matrix and exits 0 when everything passes or fails as its manifest expects.",
                 "examples:\n  dh conformance --backend cpu\n"
                 "  dh conformance --backend opencl --thorough --json report.json\n"
                 "  dh conformance --backend cpu --op Add Relu --dtype float32 --no-progress")
    p.add_argument("--backend", required=True, metavar="NAME", help="the backend to test (see 'dh backends')")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="few derandomized cases per op, for CI (the default)")
    mode.add_argument("--thorough", action="store_true", help="many random cases per op, for qualifying hardware")
    p.add_argument("--op", nargs="+", action="extend", metavar="OP", help="test only these ops")
    p.add_argument("--dtype", nargs="+", action="extend", choices=ALL_DTYPES + STRING, metavar="DT",
                   help="test only these dtypes: " + ", ".join(ALL_DTYPES + STRING))
    p.add_argument("--seed", type=int, metavar="N", help="seed of the random cases, to replay a run")
    p.add_argument("--json", metavar="PATH", help="also write the report as JSON to PATH")
    p.add_argument("--markdown", metavar="PATH", help="also write the report as Markdown to PATH")
    p.add_argument("--no-onnx-node", action="store_true",
                   help="skip ONNX's own node test cases (run by default, for the --op ops when given)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(handler=cmd_conformance)

    p = _command(commands, "run", "run a model on numpy inputs and save its outputs",
                 "Runs an ONNX model through a dh Session on the given backends and saves the\n"
                 "outputs as an .npz archive keyed by output name.",
                 "examples:\n  dh run model.onnx --input x=x.npy --output y.npz\n"
                 "  dh run model.onnx --input inputs.npz --backend opencl,cpu --fallback error")
    p.add_argument("model", metavar="MODEL", help="path of the .onnx model")
    p.add_argument("--input", nargs="+", action="extend", type=_input_spec, default=[], metavar="NAME=FILE.npy",
                   help="an input of the model from a .npy file; FILE.npz alone feeds every array it holds by name")
    p.add_argument("--output", metavar="OUT.npz", help="write the outputs to this .npz archive")
    p.add_argument("--backend", type=_backend_list, default=["cpu"], metavar="LIST",
                   help="backends in order of preference, comma separated (default: cpu)")
    p.add_argument("--fallback", choices=("allow", "warn", "error"), default="warn", help=FALLBACK_HELP)
    p.set_defaults(handler=cmd_run)

    p = _command(commands, "info", "describe a model: inputs, outputs, ops, parameters, and a backend plan",
                 "Shows a model's opset, inputs and outputs with their types, how often each op\n"
                 "occurs and the size of its parameters; with --backend also the plan: the backend\n"
                 "of every node and the copies between memory spaces.",
                 "examples:\n  dh info model.onnx\n  dh info model.onnx --backend opencl,cpu\n  dh info model.onnx --json")
    p.add_argument("model", metavar="MODEL", help="path of the .onnx model")
    p.add_argument("--backend", type=_backend_list, metavar="LIST",
                   help="also show the plan over these backends, comma separated")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(handler=cmd_info)

    p = _command(commands, "convert", "convert a model to another opset, optionally optimized",
                 "Imports an ONNX model, optionally optimizes it (folds constants, removes\n"
                 "Identity and dead nodes, folds BatchNormalization into the Conv, Gemm or\n"
                 "MatMul before it), exports it at an opset and checks the result with the\n"
                 "ONNX checker (full check) before writing it.",
                 "examples:\n  dh convert model.onnx out.onnx\n  dh convert model.onnx out.onnx --opset 17\n"
                 "  dh convert model.onnx out.onnx --optimize")
    p.add_argument("model", metavar="MODEL", help="path of the .onnx model")
    p.add_argument("output", metavar="OUT", help="path of the .onnx model to write")
    p.add_argument("--opset", type=int, metavar="N",
                   help="opset to export at (default: the newest the installed onnxruntime loads)")
    p.add_argument("--optimize", action="store_true", help="optimize the graph before exporting it")
    p.set_defaults(handler=cmd_convert)
    return parser


def _command(commands, name: str, summary: str, description: str, epilog: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=description, epilog=epilog,
                               formatter_class=argparse.RawDescriptionHelpFormatter)


def _backend_list(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected backend names separated by commas, e.g. opencl,cpu")
    return names


def _input_spec(text: str) -> tuple[str | None, str]:
    name, sep, path = text.partition("=")
    if not sep:
        if text.endswith(".npz"):
            return None, text
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy or FILE.npz, got '{text}'")
    if not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=FILE.npy, got '{text}'")
    return name, path


# -- dh backends -----------------------------------------------------------------
def cmd_backends(args: argparse.Namespace) -> int:
    """Print every declared backend with its package, availability and devices."""
    from . import backends as registry

    rows = [_backend_row(name, spec) for name, spec in registry.specs().items()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no backends installed (install dh-backend-cpu, or check DH_BACKENDS)")
        return 0
    from rich.table import Table

    table = Table("backend", "package", "available", "devices", "description")
    for row in rows:
        ok = row["available"] is True
        table.add_row(row["name"], f"{row['distribution']} {row['version']}".strip(),
                      "[green]yes[/green]" if ok else f"[red]no: {_escape(row['available'])}[/red]",
                      ", ".join(row["devices"]), _escape(row["description"]))
    _console().print(table)
    return 0


def _backend_row(name: str, spec: Any) -> dict:
    """A backend's facts; a backend that fails to start or answer is reported, not raised."""
    from . import backends as registry

    available: bool | str
    devices: list[str] = []
    try:
        backend = registry.get(name)
        available = backend.available()
        if available is True:
            describe = getattr(backend, "describe", None)
            devices = describe() if describe is not None else [str(d) for d in backend.devices()]
        else:
            available = str(available)
    except DHError as exc:
        available = str(exc)
    except Exception as exc:  # a broken plugin must not break the listing
        available = f"{type(exc).__name__}: {exc}"
    return {"name": name, "distribution": spec.distribution, "version": spec.version,
            "description": spec.description, "available": available, "devices": devices}


# -- dh conformance --------------------------------------------------------------
def cmd_conformance(args: argparse.Namespace) -> int:
    """Run the conformance suite, print the report, write JSON/Markdown copies."""
    import numpy as np

    from .conformance.runner import run_suite

    with np.errstate(all="ignore"):  # the suite feeds nan, inf and overflow on purpose
        report = run_suite(args.backend, quick=not args.thorough, ops=args.op, dtypes=args.dtype,
                           progress=not args.no_progress and sys.stderr.isatty(), seed=args.seed,
                           onnx_node=not args.no_onnx_node)
    print(report.to_text())
    if args.json:
        report.to_json(args.json)
    if args.markdown:
        report.to_markdown(args.markdown)
    return report.exit_code


# -- dh run ----------------------------------------------------------------------
def cmd_run(args: argparse.Namespace) -> int:
    """Run a model on .npy/.npz inputs; print a summary, save the outputs."""
    from .session import Session

    feeds = _load_inputs(args.input)
    session = Session(args.model, backends=args.backend, fallback=args.fallback)
    expected = [v.name for v in session.get_inputs()]
    for name in feeds:
        if name not in expected:
            raise InputError(f"unknown input '{name}'; the model's inputs are {', '.join(expected) or 'none'}")
    start = time.perf_counter()
    values = session.run(feeds)
    elapsed = time.perf_counter() - start
    outputs = dict(zip(session.graph.output_names, values))
    if args.output:
        _save_npz(args.output, outputs)

    from rich.table import Table

    table = Table("output", "dtype", "shape")
    for name, arr in outputs.items():
        table.add_row(_escape(name), arr.dtype.name, str(list(arr.shape)))
    console = _console()
    console.print(f"{_escape(args.model)}: ran in {elapsed * 1e3:.1f} ms", soft_wrap=True, highlight=False)
    console.print(table)
    if args.output:
        console.print(f"saved the outputs to {_escape(args.output)}", soft_wrap=True, highlight=False)
    return 0


def _load_inputs(specs: list[tuple[str | None, str]]) -> dict[str, Any]:
    feeds: dict[str, Any] = {}
    for name, path in specs:
        arrays = _read_arrays(path)
        if name is None:
            found = arrays
        elif len(arrays) == 1:
            found = {name: next(iter(arrays.values()))}
        else:
            raise InputError(f"input file '{path}' holds {len(arrays)} arrays; give it as --input {path} "
                             "to feed them by name")
        for key, arr in found.items():
            if key in feeds:
                raise InputError(f"input '{key}' is given twice")
            feeds[key] = arr
    return feeds


def _read_arrays(path: str) -> dict[str, Any]:
    """The arrays of an .npy file (keyed by its path) or of an .npz archive."""
    import zipfile

    import numpy as np

    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {key: loaded[key] for key in loaded.files}
        return {path: loaded}
    except OSError as exc:
        raise InputError(f"cannot read input file '{path}': {exc.strerror or exc}") from None
    except (ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"cannot read input file '{path}': not a numpy .npy/.npz file ({exc})") from None


def _save_npz(path: str, arrays: dict[str, Any]) -> None:
    """Write arrays to an .npz archive under their own names (any name, even 'file')."""
    import zipfile

    import numpy as np

    try:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
            for name, arr in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asarray(arr), allow_pickle=False)
    except OSError as exc:
        raise DHError(f"cannot write '{path}': {exc.strerror or exc}") from None


# -- dh info ---------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    """Describe a model, and with --backend its plan."""
    from .onnx_io import import_model

    # the plan needs the weights (constant folding); the description only their sizes
    graph = import_model(args.model, load_data=bool(args.backend))
    info = {"model": args.model, **model_info(graph)}
    plan = None
    if args.backend:
        from .session import Session

        plan = Session(graph, backends=args.backend, fallback="allow").plan
        info["plan"] = plan.to_dict()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    _print_info(info, plan)
    return 0


def model_info(graph: Any) -> dict:
    """Opset, typed inputs and outputs, op histogram and parameter size of a graph."""
    graphs = list(_with_subgraphs(graph))
    counts: dict[str, int] = {}
    for node in graph.walk():
        label = f"{node.domain}.{node.op}" if node.domain else node.op
        counts[label] = counts.get(label, 0) + 1
    params = [arr for g in graphs for arr in g.initializers.values()]
    return {
        "graph": graph.name,
        "opset": graph.opset,
        "inputs": [_value_dict(v.name, graph.value_types.get(v.name, v.type)) for v in graph.inputs],
        "outputs": [_value_dict(v.name, graph.value_types.get(v.name, v.type)) for v in graph.outputs],
        "nodes": sum(counts.values()),
        "ops": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "parameters": {"tensors": len(params), "count": int(sum(a.size for a in params)),
                       "bytes": int(sum(a.nbytes for a in params))},
    }


def _with_subgraphs(graph: Any) -> Iterator[Any]:
    from .ir import subgraphs

    yield graph
    for node in graph.nodes:
        for sub in subgraphs(node):
            yield from _with_subgraphs(sub)


def _value_dict(name: str, t: Any) -> dict:
    if t is None:
        return {"name": name, "dtype": None, "shape": None, "type": "?"}
    if not hasattr(t, "dtype"):  # a sequence or an optional
        return {"name": name, "dtype": None, "shape": None, "type": str(t)}
    shape = None if t.shape is None else list(t.shape)
    return {"name": name, "dtype": t.dtype, "shape": shape, "type": str(t)}


def _print_info(info: dict, plan: Any) -> None:
    from rich.table import Table

    console = _console()
    p = info["parameters"]
    console.print(f"[bold]{_escape(info['model'])}[/bold]: graph '{_escape(info['graph'])}', opset {info['opset']}, "
                  f"{info['nodes']} nodes, {p['count']:,} parameters ({_size(p['bytes'])}) in {p['tensors']} tensors",
                  soft_wrap=True, highlight=False)
    io = Table("", "name", "type", title="inputs and outputs", title_justify="left")
    for kind in ("inputs", "outputs"):
        for v in info[kind]:
            io.add_row(kind[:-1], _escape(v["name"]), v["type"])
    console.print(io)
    ops = Table("op", "count", title="ops", title_justify="left")
    for op, n in info["ops"].items():
        ops.add_row(op, str(n))
    console.print(ops)
    if plan is not None:
        console.print(_escape(str(plan)), soft_wrap=True, highlight=False)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        size /= 1024
        if size < 1024 or unit == "GiB":
            break
    return f"{size:.1f} {unit}"


# -- dh convert ------------------------------------------------------------------
LARGE_MODEL_BYTES = 2**31 - 2**26
"""Initializer bytes above which the model is written with its weights in a side file
(a protobuf message cannot exceed 2 GiB)."""


def cmd_convert(args: argparse.Namespace) -> int:
    """Import, optionally optimize, export at an opset, check and save a model."""
    from .onnx_io import export_model, import_model
    from .onnx_io.exporter import newest_runtime_opset
    from .passes import optimize

    graph = import_model(args.model)
    before = sum(1 for _ in graph.walk())
    if args.optimize:
        optimize(graph)
    model = export_model(graph, args.opset if args.opset is not None else newest_runtime_opset())
    _check_and_save(model, args.output)
    after = sum(1 for _ in graph.walk())
    print(f"{args.model} (opset {graph.opset}, {before} nodes) -> {args.output} "
          f"(opset {model.opset_import[0].version}, {after} nodes)")
    return 0


def _check_and_save(model: Any, path: str) -> None:
    """Write ``model`` to ``path`` once the ONNX checker accepts it."""
    import os

    import onnx

    large = sum(t.ByteSize() for t in model.graph.initializer) > LARGE_MODEL_BYTES
    try:
        if large:
            onnx.save(model, path, save_as_external_data=True, location=os.path.basename(path) + ".data")
            onnx.checker.check_model(path, full_check=True)
        else:
            onnx.checker.check_model(model, full_check=True)
            onnx.save(model, path)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        raise DHError(f"the converted model fails the ONNX checker: {_one_line(str(exc))}") from None


# -- output helpers --------------------------------------------------------------
def _console():
    from rich.console import Console

    return Console(file=sys.stdout)


def _escape(text: Any) -> str:
    from rich.markup import escape

    return escape(str(text))


def _fail(message: str) -> int:
    print(f"dh: error: {_one_line(message)}", file=sys.stderr)
    return 1


def _one_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return " ".join(lines) if lines else "unknown error"


def _os_error_text(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.strerror}: '{exc.filename}'"
    return str(exc)


@contextlib.contextmanager
def _warnings_as_lines() -> Iterator[None]:
    """Show each warning as one line ``dh: warning: ...`` on stderr."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"dh: warning: {_one_line(str(message))}", file=sys.stderr)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


if __name__ == "__main__":
    sys.exit(main())
