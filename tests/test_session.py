"""Session and partitioner: placement, decomposition, fallback, copies, input checks."""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import dh_core as dh
from dh_core.backend import Device, KernelBackend
from dh_core.errors import InputError, UnsupportedOpError
from dh_core.partition import FallbackWarning
from dh_core.ops import registry


class DeviceBuffer:
    """Memory of the fake device: numpy data that the host must not read directly."""

    def __init__(self, data: np.ndarray):
        self.data = data


def device_kernel(node, types):
    """Run the reference on the device buffers' data, returning device buffers."""
    opdef = registry.get(node.op)

    def kernel(*bufs):
        for b in bufs:
            assert b is None or isinstance(b, DeviceBuffer), f"{node.name} got host memory"
        outs = opdef.run_reference(node, [None if b is None else b.data for b in bufs])
        wrapped = [DeviceBuffer(o) for o in outs]
        return wrapped[0] if len(wrapped) == 1 else tuple(wrapped)

    return kernel


class PartialBackend(KernelBackend):
    """A device with its own memory that only knows some ops."""

    name = "partial"

    def __init__(self, ops):
        self.kernels = {op: device_kernel for op in ops}
        self.uploads = 0
        self.downloads = 0

    def devices(self):
        return [Device("partial:0")]

    def to_device(self, array, device):
        self.uploads += 1
        return DeviceBuffer(np.asarray(array))

    def to_host(self, buffer):
        self.downloads += 1
        return buffer.data


def chain_graph():
    rng = np.random.default_rng(0)
    b = dh.GraphBuilder("chain")
    x = b.input("x", "float32", ("N", 8))
    w1 = b.constant(rng.standard_normal((8, 8)).astype(np.float32), name="w1")
    w2 = b.constant(rng.standard_normal((8, 4)).astype(np.float32), name="w2")
    h = b.MatMul(x, w1, name="mm1")
    h = b.Relu(h, name="relu1")
    h = b.Exp(b.Neg(h, name="neg"), name="exp")
    h = b.Tanh(h, name="tanh")
    y = b.MatMul(h, w2, name="mm2")
    b.output(b.Sigmoid(y, name="sig"))
    return b.build()


def test_split_across_backends_equals_single_backend_and_plan_shows_copies():
    graph = chain_graph()
    x = np.random.default_rng(1).standard_normal((3, 8)).astype(np.float32)
    (expected,) = dh.Session(graph, backends=["cpu"]).run({"x": x})
    partial = PartialBackend({"MatMul", "Exp", "Neg", "Sigmoid"})
    sess = dh.Session(graph, backends=[partial, "cpu"])
    (got,) = sess.run({"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    placement = sess.plan.backend_of()
    assert placement["mm1"] == "partial" and placement["relu1"] == "cpu"
    assert placement["neg"] == "partial" and placement["tanh"] == "cpu"
    copies = [(c.value, c.source, c.target) for c in sess.plan.copies]
    assert ("x", "host", "partial") in copies
    assert len(copies) == 6  # x in, two hand-offs each way, result out
    text = str(sess.plan)
    assert "copy %x: host -> partial" in text and "partition 0 on partial" in text
    assert partial.uploads == 3 + 2  # x, the relu and tanh results, plus w1 and w2 at compile
    assert partial.downloads == 3


def test_composite_no_backend_claims_is_decomposed():
    graph = chain_graph()
    x = np.ones((2, 8), np.float32)
    (expected,) = dh.Session(graph, backends=["cpu"]).run({"x": x})
    # knows Max (Relu's decomposition) and the Sigmoid parts, but not Relu or Sigmoid
    partial = PartialBackend({"MatMul", "Max", "Neg", "Abs", "Exp", "Less", "Where", "Tanh", "Add", "Div", "Reciprocal"})
    sess = dh.Session(graph, backends=[partial], fallback="error")
    (got,) = sess.run({"x": x})
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    ops = {n.op for p in sess.plan.partitions for n in p.nodes}
    assert "Relu" not in ops and "Max" in ops
    assert all(p.backend is partial for p in sess.plan.partitions)


def test_fallback_policies():
    graph = chain_graph()
    partial = PartialBackend({"MatMul"})
    with pytest.raises(UnsupportedOpError) as err:
        dh.Session(graph, backends=[partial], fallback="error")
    assert str(err.value) == "node 'relu1': op Relu (float32) is not supported by any backend tried: partial"
    with pytest.warns(FallbackWarning, match="runs on the CPU"):
        sess = dh.Session(graph, backends=[partial], fallback="warn")
    assert sess.plan.fallbacks
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        dh.Session(graph, backends=[partial], fallback="allow")


def test_unsupported_op_names_node_op_dtype_and_backends():
    b = dh.GraphBuilder()
    x = b.input("x", "float32", (2,))
    b.output(b.Exp(x, name="the_exp"))
    with pytest.raises(UnsupportedOpError) as err:
        dh.Session(b.build(), backends=[PartialBackend({"Add"})], fallback="error")
    msg = str(err.value)
    assert msg == "node 'the_exp': op Exp (float32) is not supported by any backend tried: partial"


def test_shape_computations_stay_on_the_host():
    b = dh.GraphBuilder()
    x = b.input("x", "float32", ("N", 6))
    shape = b.Shape(x, name="shape")
    b.output(b.Reshape(b.Exp(x, name="exp"), shape, name="reshape"))
    partial = PartialBackend({"Exp", "Reshape", "Shape"})
    sess = dh.Session(b.build(), backends=[partial, "cpu"])
    assert sess.plan.backend_of()["shape"] == "cpu"
    x_val = np.arange(12, dtype=np.float32).reshape(2, 6)
    np.testing.assert_allclose(sess.run({"x": x_val})[0], np.exp(x_val), rtol=1e-6)


def test_min_partition_size_moves_small_partitions_to_cpu():
    partial = PartialBackend({"MatMul", "Exp", "Neg", "Sigmoid"})
    partial.min_partition_size = 2
    sess = dh.Session(chain_graph(), backends=[partial, "cpu"])
    placement = sess.plan.backend_of()
    assert placement["neg"] == "partial" and placement["exp"] == "partial"
    assert placement["mm1"] == "cpu" and placement["sig"] == "partial"


def test_input_errors_name_the_input():
    sess = dh.Session(chain_graph())
    good = np.zeros((2, 8), np.float32)
    with pytest.raises(InputError, match="missing input 'x'"):
        sess.run({})
    with pytest.raises(InputError, match="unknown input 'y'"):
        sess.run({"x": good, "y": good})
    with pytest.raises(InputError, match="input 'x' has dtype float64; the model expects float32"):
        sess.run({"x": good.astype(np.float64)})
    with pytest.raises(InputError, match=r"input 'x' has shape \[2, 7\].*axis 1 must be 8"):
        sess.run({"x": np.zeros((2, 7), np.float32)})
    with pytest.raises(InputError, match="expects rank 2"):
        sess.run({"x": np.zeros(8, np.float32)})


def test_run_with_output_names_like_onnxruntime():
    b = dh.GraphBuilder()
    x = b.input("x", "float32", (3,))
    e = b.Exp(x, outputs=["e"])
    n = b.Neg(x, outputs=["n"])
    b.output(e, n)
    sess = dh.Session(b.build())
    x_val = np.array([0.0, 1.0, 2.0], np.float32)
    n_val, e_val = sess.run(["n", "e"], {"x": x_val})
    np.testing.assert_array_equal(n_val, -x_val)
    np.testing.assert_allclose(e_val, np.exp(x_val), rtol=1e-6)
    with pytest.raises(InputError, match="unknown output 'z'"):
        sess.run(["z"], {"x": x_val})


def test_constant_subgraphs_are_folded_and_outputs_are_arrays():
    b = dh.GraphBuilder()
    c = b.constant(np.array([1.0, 2.0], np.float32))
    folded = b.Exp(c, name="const_exp")
    x = b.input("x", "float32", (2,))
    b.output(b.Add(x, folded, name="add"), folded)
    sess = dh.Session(b.build())
    assert "const_exp" not in sess.plan.backend_of()
    y, k = sess.run({"x": np.zeros(2, np.float32)})
    np.testing.assert_allclose(y, np.exp([1.0, 2.0]).astype(np.float32), rtol=1e-6)
    assert isinstance(y, np.ndarray) and isinstance(k, np.ndarray)
