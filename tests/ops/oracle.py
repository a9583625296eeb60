"""Helpers for op tests: run an op through onnx.reference (the independent oracle),
through our numpy reference, and through its decomposition."""
from __future__ import annotations

import itertools

import numpy as np
import onnx
from dh_core.conformance.runner import value_type
from dh_core.ops import registry
from dh_core.ops.base import Decomposer, InferContext
from onnx import helper
from onnx.reference import ReferenceEvaluator

from dh_core import dtypes as dt
from dh_core.ir import DOMAIN_OPSETS, Node, TensorType


def _attr_value(v):
    if isinstance(v, np.ndarray):
        return onnx.numpy_helper.from_array(v)
    return v


def onnx_run(op: str, inputs, attrs=None, n_outputs: int = 1, opset: int = 28, domain: str = ""):
    """Run one ONNX node with onnx.reference; None inputs are omitted optional ones.
    An op of another domain than ai.onnx is imported at that domain's canonical version
    (DOMAIN_OPSETS), else 1."""
    attrs = attrs or {}
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outs = [f"y{i}" for i in range(n_outputs)]
    node = helper.make_node(op, names, outs, domain=domain or None,
                            **{k: _attr_value(v) for k, v in attrs.items()})
    graph_inputs = [
        helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
        for n, x in zip(names, inputs) if x is not None]
    graph_outputs = [helper.make_tensor_value_info(o, onnx.TensorProto.UNDEFINED, None) for o in outs]
    opsets = [helper.make_opsetid("", opset)] + ([helper.make_opsetid(domain, DOMAIN_OPSETS.get(domain, 1))]
                                                 if domain else [])
    model = helper.make_model(helper.make_graph([node], "g", graph_inputs, graph_outputs),
                              opset_imports=opsets)
    feeds = {n: x for n, x in zip(names, inputs) if x is not None}
    return ReferenceEvaluator(model).run(None, feeds)


def ours(op: str, inputs, attrs=None, n_outputs: int = 1, domain: str = ""):
    """Run one op through our numpy reference; returns a list of arrays."""
    opdef = registry.get(op, domain)
    node = Node(op, [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)],
                [f"y{i}" for i in range(n_outputs)], dict(attrs or {}), domain=domain)
    return opdef.run_reference(node, list(inputs))[:n_outputs]


def infer(op: str, inputs, attrs=None, n_outputs: int = 1, constant_inputs=(), domain: str = ""):
    """Our inferred output types for concrete inputs (constant_inputs: indices whose
    values are known to inference, as initializers would be)."""
    opdef = registry.get(op, domain)
    node = Node(op, [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)],
                [f"y{i}" for i in range(n_outputs)], dict(attrs or {}), domain=domain)
    types = [None if x is None else TensorType(dt.name_of(x.dtype), x.shape) for x in inputs]
    consts = [x if i in constant_inputs else None for i, x in enumerate(inputs)]
    return opdef.infer(InferContext(node, types, opdef.full_attrs(node), consts))


def decomposed(op: str, inputs, attrs=None, n_outputs: int = 1, constant_inputs=()):
    """Run a composite op through its decomposition, evaluating each emitted node with
    our references (recursively decomposing nothing: emitted ops run directly)."""
    opdef = registry.get(op)
    assert opdef.composite, f"{op} is not a composite"
    names = [f"x{i}" if x is not None else "" for i, x in enumerate(inputs)]
    node = Node(op, names, [f"y{i}" for i in range(n_outputs)], dict(attrs or {}), name=op)
    types = [None if x is None else value_type(x) for x in inputs]
    consts = [x if i in constant_inputs else None for i, x in enumerate(inputs)]
    counter = itertools.count()
    d = Decomposer(node, types, opdef.full_attrs(node), consts, lambda base: f"{base}_{next(counter)}")
    opdef.decompose(d)
    env = {n: x for n, x in zip(names, inputs) if n}
    env.update(d.initializers)
    for sub in d.nodes:
        sub_def = registry.get(sub.op)
        results = sub_def.run_reference(sub, [env[i] if i else None for i in sub.inputs],
                                        env if sub_def.reads_outer else None)
        for name, r in zip(sub.outputs, results):
            if name:
                env[name] = r
    return [env[o] for o in node.outputs]


def assert_matches(got, want, tolerance: tuple[float, float]) -> None:
    """Same dtype and shape; floats equal within (rtol, atol) with nan == nan, others exactly."""
    got, want = np.asarray(got), dt.as_ir_array(want)  # onnx.reference may give str_ arrays
    assert got.dtype == want.dtype, f"dtype {got.dtype} != {want.dtype}"
    assert got.shape == want.shape, f"shape {got.shape} != {want.shape}"
    if got.dtype.kind == "f" or dt.name_of(got.dtype) in dt.BFLOAT16 + dt.SMALL_FLOATS:
        rtol, atol = tolerance
        np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol,
                                   equal_nan=True)
    else:
        np.testing.assert_array_equal(got, want)


def assert_all_match(got, want, tolerance: tuple[float, float]) -> None:
    """assert_matches for each of several outputs, which must be as many."""
    assert len(got) == len(want), f"{len(got)} outputs != {len(want)}"
    for g, w in zip(got, want):
        assert_matches(g, w, tolerance)


def infer_compatible(inferred: TensorType | None, actual: np.ndarray) -> bool:
    """An inference may know less than the actual output (None dims, unknown rank),
    but nothing wrong."""
    if inferred is None:
        return True
    if inferred.dtype != dt.name_of(actual.dtype):
        return False
    if inferred.shape is None:
        return True
    return len(inferred.shape) == actual.ndim and all(
        d is None or d == a for d, a in zip(inferred.shape, actual.shape))


def draw_sample(data, op: str, dtype: str):
    """One sample of ``op`` at ``dtype`` from its registered conformance strategy."""
    from dh_core.conformance.samples import all_samples

    return data.draw(all_samples()[op].strategy(dtype), label="sample")


def sample_outputs(op: str, sample) -> int:
    """How many outputs a sample asks for (every schema output unless it says)."""
    return sample.n_outputs or len(registry.get(op).outputs)


def assert_infer_matches(op: str, sample, constant_inputs=(), data_dependent: bool = False) -> None:
    """Inference gives the real outputs' types: exactly with the constant inputs known
    (shapes known but free for data-dependent ops), and compatibly without them."""
    n = sample_outputs(op, sample)
    got = ours(op, sample.inputs, sample.attrs, n)
    known = infer(op, sample.inputs, sample.attrs, n, constant_inputs)
    if data_dependent:
        assert all(infer_compatible(t, g) and t.shape is not None for t, g in zip(known, got)), known
    else:
        assert known == [TensorType(g.dtype.name, g.shape) for g in got]
    partial = infer(op, sample.inputs, sample.attrs, n)
    assert len(partial) == n and all(infer_compatible(t, g) for t, g in zip(partial, got)), partial


def assert_infer_survives_unknown_rank(op: str) -> None:
    """Inference answers (one type per output) when the first input's rank is unknown."""
    opdef = registry.get(op)
    node = Node(op, [f"x{i}" for i in range(len(opdef.inputs))], [f"y{i}" for i in range(len(opdef.outputs))])
    types = [TensorType("float32")] + [None] * (len(opdef.inputs) - 1)
    result = opdef.infer(InferContext(node, types, opdef.full_attrs(node), [None] * len(types)))
    assert len(result) == len(opdef.outputs), op
