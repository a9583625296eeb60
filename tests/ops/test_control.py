"""If, Loop, Scan and SequenceMap: references against onnx.reference on drawn samples
(the one-node graph is exported with its subgraphs), inferred types, and how passes,
the partitioner and the session see the outer values a subgraph reads."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import onnx
import pytest
from dh_backend_cpu.backend import reference_kernel
from dh_core.conformance.runner import one_node_graph
from hypothesis import HealthCheck, assume, given, settings
from onnx.backend.test.case.node import collect_testcases

import dh_core as dh
from dh_core.backend import KernelBackend
from dh_core.ir import (
    Graph,
    Node,
    SequenceType,
    TensorType,
    Value,
    implicit_inputs,
    node_reads,
)
from dh_core.passes import eliminate_dead_code, infer_types

from .control_oracle import assert_same, onnx_outputs, ort_outputs, ours, strategy
from .oracle import decomposed
from .oracle import ours as run_reference

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
OPS = ["If", "Loop", "Scan", "SequenceMap"]


@pytest.mark.parametrize("dtype", ["float32", "int32", "bool"])
@pytest.mark.parametrize("op", OPS)
def test_reference_matches_onnx(op, dtype):
    """onnx.reference as the oracle; onnxruntime for Scan, whose onnx.reference handles
    only scan axis 0 and forward directions."""

    @SETTINGS
    @given(strategy(op, dtype))
    def check(sample):
        sample = _explicit_cond(op, sample)
        assume(not _no_iteration(op, sample))
        if op == "Scan":  # onnxruntime 1.32 dies (SIGFPE) on zero-size Scan inputs; ours are checked by the suite
            assume(all(x.size for x in sample.inputs))
        if op == "SequenceMap":  # onnx.reference fails on an empty sequence (test_sequence_map_of_nothing)
            assume(len(sample.inputs[0]) > 0)
        want = (ort_outputs if op == "Scan" else onnx_outputs)(op, sample)
        got = ours(op, sample)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert_same(g, w)

    check()


def _explicit_cond(op, sample):
    """The Loop sample with an omitted cond written as true, which the spec says it
    means; onnx.reference takes an omitted cond as false (test_loop_until_the_body_stops
    checks the omitted form)."""
    if op != "Loop" or sample.inputs[1] is not None:
        return sample
    return replace(sample, inputs=[sample.inputs[0], np.array(True), *sample.inputs[2:]])


def _no_iteration(op, sample) -> bool:
    """Loops without iterations (M is 0 or cond false): onnx.reference then fails to
    stack the scan outputs (test_loop_without_iterations covers them)."""
    if op != "Loop":
        return False
    m, cond = sample.inputs[0], sample.inputs[1]
    return (m is not None and int(m) == 0) or not bool(cond)


def test_loop_until_the_body_stops():
    body = Graph([Node("Less", ["i", "three"], ["c_out"], name="c"), Node("Identity", ["i"], ["i_out"], name="i")],
                 [Value("i", TensorType("int64", ())), Value("c", TensorType("bool", ()))],
                 [Value("c_out"), Value("i_out", TensorType("int64", ()))], {"three": np.array(3)}, name="body")
    (scanned,) = run_reference("Loop", [None, None], {"body": body})
    np.testing.assert_array_equal(scanned, [0, 1, 2, 3])


def test_loop_without_iterations():
    body = Graph([Node("Identity", ["c"], ["c_out"], name="c"), Node("Identity", ["v"], ["v_out"], name="v"),
                  Node("Identity", ["i"], ["i_out"], name="i")],
                 [Value("i", TensorType("int64", ())), Value("c", TensorType("bool", ())), Value("v")],
                 [Value("c_out"), Value("v_out"), Value("i_out", TensorType("int64", ()))], name="body")
    v = np.arange(3, dtype=np.float32)
    for m, cond in ((np.array(0), None), (np.array(5), np.array(False))):
        final, scanned = run_reference("Loop", [m, cond, v], {"body": body}, n_outputs=2)
        np.testing.assert_array_equal(final, v)
        assert scanned.dtype == np.int64 and scanned.shape == (0,)


@pytest.mark.parametrize("op", OPS)
def test_inferred_types_match_the_values(op):
    @SETTINGS
    @given(strategy(op, "float32"))
    def check(sample):
        graph = one_node_graph(op, sample, len(ours(op, sample)))
        for name, value in zip(graph.output_names, ours(op, sample)):
            t = graph.value_types.get(name)
            if isinstance(value, list):
                assert isinstance(t, SequenceType)
                continue
            assert t is not None and t.dtype == value.dtype.name
            if t.shape is not None:
                assert len(t.shape) == value.ndim
                assert all(d is None or d == n for d, n in zip(t.shape, value.shape)), (t, value.shape)

    check()


def _if_graph() -> Graph:
    """y = If(c) then (a + b) else (a - b); a is computed outside and read by both branches."""
    then = Graph([Node("Add", ["a", "b"], ["t"], name="add")], [], [Value("t")], name="then")
    other = Graph([Node("Sub", ["a", "b"], ["e"], name="sub")], [], [Value("e")], name="else")
    nodes = [Node("Relu", ["x"], ["a"], name="relu"),
             Node("If", ["c"], ["y"], {"then_branch": then, "else_branch": other}, name="if")]
    f32 = TensorType("float32", (3,))
    return Graph(nodes, [Value("c", TensorType("bool", ())), Value("x", f32), Value("b", f32)], [Value("y")])


def test_implicit_inputs_name_the_outer_values_a_subgraph_reads():
    graph = _if_graph()
    node = graph.nodes[1]
    assert implicit_inputs(node) == ["a", "b"]
    assert node_reads(node) == ["c", "a", "b", "a", "b"]
    graph.verify()


def test_dead_code_elimination_keeps_values_only_subgraphs_read():
    graph = _if_graph()
    eliminate_dead_code(graph)
    assert [n.op for n in graph.nodes] == ["Relu", "If"]


def test_session_runs_if_with_outer_values_and_infers_its_type():
    sess = dh.Session(_if_graph())
    assert sess.graph.type_of("y") == TensorType("float32", (3,))
    x = np.array([-1, 2, 3], np.float32)
    b = np.ones(3, np.float32)
    (y,) = sess.run({"c": np.array(True), "x": x, "b": b})
    np.testing.assert_array_equal(y, np.maximum(x, 0) + b)
    (y,) = sess.run({"c": np.array(False), "x": x, "b": b})
    np.testing.assert_array_equal(y, np.maximum(x, 0) - b)


def test_plan_wires_outer_values_into_the_control_flow_partition():
    sess = dh.Session(_if_graph())
    part = next(p for p in sess.plan.partitions if any(n.op == "If" for n in p.nodes))
    assert set(part.inputs) >= {"c", "b"}
    assert sess.plan.backend_of()["if"] == "cpu"


def test_loop_with_a_sequence_carried_and_no_initial_value_matches_onnx():
    """test_loop16_seq_none: onnx's runner cannot compare its output (a sequence that
    holds a 0-d tensor), so the manifest lists it; the values are checked here."""
    case = next(c for c in collect_testcases() if c.name == "test_loop16_seq_none")
    inputs, expected = case.data_sets[0]
    sess = dh.Session(case.model)
    outputs = sess.run(dict(zip([i.name for i in case.model.graph.input], inputs)))
    assert len(outputs) == len(expected)
    for got, want in zip(outputs, expected):
        assert_same(got, want)


def test_exported_if_model_passes_the_onnx_checker():
    graph = infer_types(_if_graph())
    assert graph.nodes[1].attrs["then_branch"].outputs[0].type == TensorType("float32", (3,))
    model = dh.onnx_io.export_model(graph)
    onnx.checker.check_model(model, full_check=True)
    again = dh.onnx_io.import_model(model)
    assert implicit_inputs(again.nodes[1]) == ["a", "b"]


def test_sequence_map_of_nothing():
    body = Graph([Node("Identity", ["a"], ["b"], name="id")], [Value("a")], [Value("b")], name="body")
    (out,) = run_reference("SequenceMap", [[]], {"body": body})
    assert out == []


class _AnyOpBackend(KernelBackend):
    """A device backend with a kernel for every op, If included, on its own memory."""

    name = "anyop"

    def __init__(self):
        self.kernels = {op.name: reference_kernel for op in dh.ops.all_ops() if not op.domain}


def test_control_flow_stays_on_the_host_whatever_a_device_backend_claims():
    backend = _AnyOpBackend()
    graph = _if_graph()
    assert not backend.supports(graph.nodes[1], [TensorType("bool", ())])
    assert backend.supports(graph.nodes[0], [TensorType("float32", (3,))])
    assert not backend.supports(Node("Identity", ["s"], ["t"]), [SequenceType(TensorType("float32"))])
    sess = dh.Session(graph, backends=[backend], fallback="allow")
    placed = sess.plan.backend_of()
    assert placed == {"relu": "anyop", "if": "cpu"}
    x = np.array([-1, 2, 3], np.float32)
    (y,) = sess.run({"c": np.array(True), "x": x, "b": x})
    np.testing.assert_array_equal(y, np.maximum(x, 0) + x)


def test_sequence_map_decomposes_into_a_loop_with_the_same_results():
    @SETTINGS
    @given(strategy("SequenceMap", "float32"))
    def check(sample):
        got = decomposed("SequenceMap", sample.inputs, sample.attrs, n_outputs=2)
        for g, w in zip(got, ours("SequenceMap", sample)):
            assert_same(g, w)

    check()
