"""dh's CPU backend against onnxruntime on the light model zoo shipped in the onnx package.

    pip install -e '.[bench]'
    python benchmarks/vs_onnxruntime.py [--repeat 10] [--warmup 2] [--clock wall|cpu]
                                        [--models resnet50,vgg19]

The models are onnx/backend/test/data/light/light_*.onnx: real architectures whose
weights are ConstantOfShape nodes (made at load time, every one filled with 0.02), with
batch 1 as the model gives it. With equal weights every class gets the same score, so an
output check would prove little: each ConstantOfShape becomes a seeded random
initializer of its shape instead (weights scaled by their fan-in, one-dimensional
parameters such as variances in [0.5, 1.5]), and both runtimes run that model. The
input is the one onnx's test runner feeds them (arange(n)/n in the input's shape). Both runtimes run on one thread: dh's BLAS through threadpoolctl, onnxruntime
with intra_op_num_threads=1, inter_op_num_threads=1 and sequential execution. Before
timing, the two outputs must agree (a model whose outputs differ is reported and
skipped). The runs of the two alternate, one of each per round, so machine noise hits
both; the table gives each one's median, their ratio and the geometric mean of dh/ort.
On a shared machine ``--clock cpu`` (CPU time of the running thread) is steadier than
elapsed time.
"""
from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
from _common import header
from onnx import numpy_helper

import dh_core as dh

MODELS = ("resnet50", "densenet121", "inception_v1", "inception_v2", "squeezenet", "shufflenet",
          "vgg19", "bvlc_alexnet", "zfnet512")
LIGHT = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
RTOL, ATOL = 1e-3, 1e-4
"""Agreement required between dh and onnxruntime (float32, relative to the output scale)."""


def randomized(model: onnx.ModelProto, seed: int = 0) -> onnx.ModelProto:
    """The model with each ConstantOfShape of a constant shape replaced by a seeded random
    initializer: uniform in +-sqrt(3 / fan-in) for weights (rank >= 2), in [0.5, 1.5] for
    vectors (scales, biases, means, variances) and scalars."""
    rng = np.random.default_rng(seed)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    shapes = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type != "ConstantOfShape" or node.input[0] not in shapes:
            kept.append(node)
            continue
        shape = tuple(int(d) for d in shapes[node.input[0]])
        if len(shape) >= 2:
            bound = math.sqrt(3.0 / max(1, int(np.prod(shape[1:]))))
            value = rng.uniform(-bound, bound, shape)
        else:
            value = rng.uniform(0.5, 1.5, shape)
        graph.initializer.append(numpy_helper.from_array(value.astype(np.float32), node.output[0]))
    del graph.node[:]
    graph.node.extend(kept)
    return out


def feeds_of(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The input onnx's runner gives a light model: arange(n)/n, float32, unknown dims 1."""
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for value in model.graph.input:
        if value.name in inits:
            continue
        shape = tuple(d.dim_value if d.HasField("dim_value") else 1 for d in value.type.tensor_type.shape.dim)
        n = int(np.prod(shape))
        feeds[value.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


def ort_session(model: onnx.ModelProto):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.log_severity_level = 3  # no warnings about the unused initializers some models carry
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def disagreement(ours: list[np.ndarray], theirs: list[np.ndarray]) -> str | None:
    """None when the outputs agree, else one line saying where they differ."""
    if len(ours) != len(theirs):
        return f"{len(ours)} outputs vs {len(theirs)}"
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a.shape != b.shape or a.dtype != b.dtype:
            return f"output {i}: {a.dtype}{list(a.shape)} vs {b.dtype}{list(b.shape)}"
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        err = float(np.max(np.abs(a.astype(np.float64) - b))) if b.size else 0.0
        if not err <= ATOL + RTOL * scale:
            return f"output {i}: max abs difference {err:.3g} (output scale {scale:.3g})"
    return None


CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}
"""wall: elapsed time; cpu: CPU time of the calling thread, which both runtimes use
alone at one thread (steadier on a busy machine: time spent waiting for a core is left out)."""


def interleaved(dh_run, ort_run, repeat: int, warmup: int, clock) -> tuple[float, float]:
    """Median seconds of each, one run of each per round after ``warmup`` rounds."""
    for _ in range(warmup):
        dh_run()
        ort_run()
    ours, theirs = [], []
    for _ in range(repeat):
        start = clock()
        dh_run()
        middle = clock()
        ort_run()
        ours.append(middle - start)
        theirs.append(clock() - middle)
    return statistics.median(ours), statistics.median(theirs)


def bench(name: str, repeat: int, warmup: int, clock) -> tuple[float, float] | str:
    """(dh seconds, ort seconds) of one model, or a line saying why it was not timed."""
    model = randomized(onnx.load(LIGHT / f"light_{name}.onnx"))
    feeds = feeds_of(model)
    sess = dh.Session(model, backends=["cpu"])
    ref = ort_session(model)
    problem = disagreement(sess.run(feeds), ref.run(None, feeds))
    if problem is not None:
        return f"outputs differ from onnxruntime: {problem}"
    return interleaved(lambda: sess.run(feeds), lambda: ref.run(None, feeds), repeat, warmup, clock)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10, help="timed rounds per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds per model")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="wall: elapsed time; cpu: CPU time of the running thread")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated subset of {', '.join(MODELS)}")
    args = parser.parse_args()
    names = [m for m in args.models.split(",") if m]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        parser.error(f"unknown model '{unknown[0]}'; choose from {', '.join(MODELS)}")

    import onnxruntime
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        header("dh CPU backend vs onnxruntime, light model zoo, batch 1")
        print(f"threads: 1 (dh: BLAS limited by threadpoolctl; onnxruntime {onnxruntime.__version__}: "
              f"intra_op=1, inter_op=1, sequential); {args.warmup} warm-up + {args.repeat} interleaved runs, {args.clock} clock")
        print(f"{'model':<14}{'dh ms':>10}{'ort ms':>10}{'dh/ort':>9}")
        ratios = []
        for name in names:
            result = bench(name, args.repeat, args.warmup, CLOCKS[args.clock])
            if isinstance(result, str):
                print(f"{name:<14}skipped: {result}")
                continue
            ours, theirs = result
            ratios.append(ours / theirs)
            print(f"{name:<14}{ours * 1e3:10.2f}{theirs * 1e3:10.2f}{ratios[-1]:9.2f}", flush=True)
        if ratios:
            geo = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
            print(f"geometric mean of dh/ort over {len(ratios)} models: {geo:.2f}")


if __name__ == "__main__":
    main()
