"""How long ``dh info`` takes on a large model: a ~100 MB MLP of big initializers.

    python benchmarks/info_large_model.py [--mib 100] [--repeat 5] [--external]

Builds the model in a temporary directory (``--external`` stores the weights in a
side file as external data), runs ``dh info MODEL --json`` as a subprocess
``--repeat`` times and prints the median and minimum wall time (interpreter start,
imports, reading the file and describing the model, as a user sees it) and the median
CPU time of the subprocess, which a busy machine inflates less.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
from _common import header
from onnx import TensorProto, helper, numpy_helper


def large_model(mib: int, width: int = 2048) -> onnx.ModelProto:
    """MatMul+Add+Relu layers of ``width`` x ``width`` float32 weights, ~``mib`` MiB in all."""
    layers = max(1, round(mib * 2**20 / (width * width * 4)))
    rng = np.random.default_rng(0)
    nodes, inits, y = [], [], "x"
    for i in range(layers):
        w = rng.standard_normal((width, width), dtype=np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(np.zeros(width, np.float32), f"b{i}")]
        nodes += [helper.make_node("MatMul", [y, f"w{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"a{i}"]),
                  helper.make_node("Relu", [f"a{i}"], [f"h{i}"])]
        y = f"h{i}"
    graph = helper.make_graph(nodes, "large_mlp", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", width])],
                              [helper.make_tensor_value_info(y, TensorProto.FLOAT, ["N", width])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])


def dh_command() -> list[str]:
    script = shutil.which("dh")
    return [script] if script else [sys.executable, "-m", "dh_core.cli"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_info(path: str, repeat: int) -> tuple[list[float], list[float], dict]:
    """Wall and CPU seconds of each ``dh info`` run, and the last run's JSON."""
    times, cpu, info = [], [], {}
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), _children_cpu()
        done = subprocess.run([*dh_command(), "info", path, "--json"], capture_output=True, text=True, check=False)
        times.append(time.perf_counter() - start)
        cpu.append(_children_cpu() - start_cpu)
        if done.returncode != 0:
            sys.exit(f"dh info failed: {done.stderr.strip()}")
        info = json.loads(done.stdout)
    return times, cpu, info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100, help="size of the weights in MiB (default 100)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--external", action="store_true", help="store the weights as external data")
    args = parser.parse_args()
    header("dh info on a large model")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "large.onnx")
        model = large_model(args.mib)
        if args.external:
            onnx.save(model, path, save_as_external_data=True, location="large.bin")
        else:
            onnx.save(model, path)
        size = sum(os.path.getsize(os.path.join(tmp, f)) for f in os.listdir(tmp))
        times, cpu, info = time_info(path, args.repeat)
    p = info["parameters"]
    print(f"model: {size / 2**20:.1f} MiB on disk{' (external data)' if args.external else ''}, "
          f"{info['nodes']} nodes, {p['count']:,} parameters in {p['tensors']} tensors")
    print(f"dh info: median {statistics.median(times):.3f} s, min {min(times):.3f} s over {args.repeat} runs "
          f"(CPU time: median {statistics.median(cpu):.3f} s)")


if __name__ == "__main__":
    main()
