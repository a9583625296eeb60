"""Fused elementwise kernels of the OpenCL backend: bit-identical to the unfused kernels,
equal to the op library's numpy references node by node, fewer program steps (kernel
launches), and intermediates other nodes or the partition's outputs read are kept.
Skipped, with the reason, where pyopencl or an OpenCL platform is missing."""
from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pyopencl", reason="pyopencl is not installed")

from dh_backend_opencl import fusion

import dh_core as dh
from dh_core.builder import GraphBuilder
from dh_core.ir import Graph
from tests.ops.oracle import ours
from tests.opencl.test_opencl_backend import BACKEND, DEVICE, SPECIAL as SPECIALS, check

RNG = np.random.default_rng(1)
SPECIAL, HALVES = SPECIALS["float32"], SPECIALS["float16"]


def normal(*shape) -> np.ndarray:
    return RNG.normal(0, 2, shape).astype(np.float32)


def half(*shape) -> np.ndarray:
    return normal(*shape).astype(np.float16)


def build(inputs: dict[str, np.ndarray], body) -> Graph:
    """A graph over ``inputs``; ``body(builder, *input names)`` adds nodes and returns
    the output names."""
    b = GraphBuilder("fusion")
    names = [b.input(k, v.dtype.name, v.shape) for k, v in inputs.items()]
    b.output(*body(b, *names))
    return b.build()


def reference(graph: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The graph evaluated node by node with the op library's numpy references."""
    env = {**graph.initializers, **feeds}
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            outs = ours(node.op, [env[n] if n else None for n in node.inputs], node.attrs)
            env.update(zip(node.outputs, outs))
    return [env[v.name] for v in graph.outputs]


def run(graph: Graph, feeds: dict[str, np.ndarray], fused: bool, monkeypatch) -> tuple[list[np.ndarray], int]:
    """The outputs on the OpenCL backend and the number of program steps (one kernel
    launch each for elementwise nodes and fused groups)."""
    monkeypatch.setenv("DH_OPENCL_FUSION", "1" if fused else "0")
    program = BACKEND.compile(graph, DEVICE)
    outputs = program.run([BACKEND.to_device(feeds[v.name], DEVICE) for v in graph.inputs])
    return [BACKEND.to_host(y) for y in outputs], len(program.steps)


def check_fusion(graph: Graph, feeds: dict[str, np.ndarray], steps: int, monkeypatch) -> None:
    """Fused run: ``steps`` steps, bit-identical to the unfused run (one step per node),
    and equal to the reference."""
    fused, fused_steps = run(graph, feeds, True, monkeypatch)
    plain, plain_steps = run(graph, feeds, False, monkeypatch)
    assert (fused_steps, plain_steps) == (steps, len(graph.nodes))
    for f, p, expected in zip(fused, plain, reference(graph, feeds)):
        assert f.dtype == p.dtype and f.shape == p.shape and f.tobytes() == p.tobytes()
        check(f, expected)


def batchnorm_relu(b, x, scale, shift):
    return [b.node("Relu", b.node("Add", b.node("Mul", x, scale), shift))]


def residual(b, x, y):
    return [b.node("Relu", b.node("Add", x, y))]


def swish(b, x):
    return [b.node("Mul", x, b.node("Sigmoid", x))]


def attributes(b, x, dtype=np.float32):
    low = b.constant(dtype(-0.5), "low")
    y = b.node("LeakyRelu", x, alpha=0.2)
    y = b.node("HardSigmoid", b.node("Elu", y, alpha=0.7), alpha=0.3, beta=0.4)
    y = b.node("Clip", b.node("Gelu", y, approximate="tanh"), low, "")
    return [b.node("Selu", b.node("Gelu", y), alpha=1.5, gamma=0.5)]


def compare_select(b, x, y):
    return [b.node("Where", b.node("Less", x, y), b.node("Exp", x), b.node("Neg", y))]


def variadic(b, x, y, z):
    total = b.node("Sum", x, y, z)
    return [b.node("Mod", b.node("Mean", b.node("Max", total, y), z, x), y, fmod=1)]


def integers(b, x, y):
    return [b.node("Mod", b.node("Relu", b.node("Sub", x, y)), y)]


def power(b, x, e):
    return [b.node("Sqrt", b.node("Pow", b.node("Abs", x), e))]


CASES = {
    "batchnorm": (batchnorm_relu, {"x": normal(2, 3, 4, 5), "scale": normal(3, 1, 1), "shift": normal(3, 1, 1)}, 1),
    "residual": (residual, {"x": normal(2, 3, 4), "y": normal(2, 3, 4)}, 1),
    "swish (diamond)": (swish, {"x": normal(4, 7)}, 1),
    "attributes": (attributes, {"x": normal(3, 50)}, 1),
    "comparison to Where": (compare_select, {"x": normal(5, 1), "y": normal(6)}, 1),
    "variadic and helpers": (variadic, {"x": normal(4, 1), "y": np.abs(normal(3)) + 1, "z": normal(1, 1)}, 1),
    "int64": (integers, {"x": RNG.integers(-50, 50, (3, 4)), "y": RNG.integers(1, 9, (4,))}, 1),
    "int exponent": (power, {"x": normal(2, 6), "e": RNG.integers(-2, 4, (6,)).astype(np.int32)}, 1),
    "float16 exponent": (power, {"x": normal(2, 6), "e": normal(2, 1).astype(np.float16)}, 1),
    "scalars": (batchnorm_relu, {"x": normal(), "scale": normal(), "shift": normal()}, 1),
    "scalar and tensor": (batchnorm_relu, {"x": normal(6), "scale": normal(), "shift": normal(1)}, 1),
    "zero-size": (batchnorm_relu, {"x": normal(0, 3), "scale": normal(3), "shift": normal(1, 1)}, 1),
    "zero-size by broadcast": (residual, {"x": normal(0, 1), "y": normal(4)}, 1),
    "nan and inf": (batchnorm_relu, {"x": SPECIAL, "scale": SPECIAL[:, None], "shift": SPECIAL[:, None, None]}, 1),
    "nan and inf, attributes": (attributes, {"x": SPECIAL}, 1),
    "nan and inf, variadic": (variadic, {"x": SPECIAL[:, None], "y": SPECIAL, "z": SPECIAL[:, None, None]}, 1),
    "float16": (batchnorm_relu, {"x": half(2, 3, 4, 5), "scale": half(3, 1, 1), "shift": half(3, 1, 1)}, 1),
    "float16 swish": (swish, {"x": half(4, 7)}, 1),
    "float16 attributes": (lambda b, x: attributes(b, x, np.float16), {"x": half(3, 50)}, 1),
    "float16 comparison to Where": (compare_select, {"x": half(5, 1), "y": half(6)}, 1),
    "float16 variadic": (variadic, {"x": half(4, 1), "y": (np.abs(normal(3)) + 1).astype(np.float16),
                                    "z": half(1, 1)}, 1),
    "float16 scalars and zero-size": (residual, {"x": half(0, 1), "y": half()}, 1),
    "float16 nan, inf, subnormals, overflow": (batchnorm_relu, {"x": HALVES, "scale": HALVES[:, None],
                                                                "shift": HALVES[:, None, None]}, 1),
    "float16 nan and inf, variadic": (variadic, {"x": HALVES[:, None], "y": HALVES, "z": HALVES[:, None, None]}, 1),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fused_group_is_bit_identical_and_matches_reference(name, monkeypatch):
    body, feeds, steps = CASES[name]
    check_fusion(build(feeds, body), feeds, steps, monkeypatch)


def test_intermediate_that_is_an_output_is_kept(monkeypatch):
    feeds = {"x": normal(3, 4), "y": normal(4)}
    graph = build(feeds, lambda b, x, y: (lambda s: [b.node("Relu", s), s])(b.node("Add", x, y)))
    check_fusion(graph, feeds, 2, monkeypatch)


def test_chain_after_a_kept_output_still_fuses(monkeypatch):
    def body(b, x, y):
        s = b.node("Add", x, y)
        return [b.node("Tanh", b.node("Relu", s)), s]

    feeds = {"x": normal(3, 4), "y": normal(4)}
    check_fusion(build(feeds, body), feeds, 2, monkeypatch)


def test_intermediate_read_outside_the_group_is_kept(monkeypatch):
    def body(b, x, w):
        s = b.node("Sigmoid", x)
        return [b.node("Add", b.node("Mul", s, x), b.node("MatMul", s, w))]

    feeds = {"x": normal(3, 4), "w": normal(4, 4)}
    check_fusion(build(feeds, body), feeds, 3, monkeypatch)


def test_diamond_of_two_branches_fuses_into_one_kernel(monkeypatch):
    def body(b, x, y):
        s = b.node("Add", x, y)
        return [b.node("Div", b.node("Exp", s), b.node("Add", b.node("Abs", s), y))]

    feeds = {"x": normal(2, 5), "y": normal(5)}
    check_fusion(build(feeds, body), feeds, 1, monkeypatch)


def test_dtype_change_breaks_the_group(monkeypatch):
    def body(b, x, y):
        return [b.node("Not", b.node("Greater", b.node("Add", x, y), y))]

    feeds = {"x": normal(3, 4), "y": normal(4)}
    check_fusion(build(feeds, body), feeds, 2, monkeypatch)


def test_fused_group_in_a_session_with_the_cpu_backend(monkeypatch):
    monkeypatch.setenv("DH_OPENCL_FUSION", "1")
    feeds = {"x": normal(2, 3, 4, 5), "scale": normal(3, 1, 1), "shift": normal(3, 1, 1)}
    graph = build(feeds, batchnorm_relu)
    session = dh.Session(graph, backends=["opencl", "cpu"])
    check(session.run(feeds)[0], reference(graph, feeds)[0])


def test_fused_node_names_its_members():
    feeds = {"x": normal(4, 7)}
    fused = fusion.fuse(build(feeds, swish), BACKEND.supports)
    assert [n.op for n in fused.nodes] == ["Fused"]
    assert str(fused.nodes[0].attrs["group"]) == "[Sigmoid, Mul]"
