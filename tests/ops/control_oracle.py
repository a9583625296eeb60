"""Run a conformance sample of a control-flow, sequence or optional op through
onnx.reference (or onnxruntime): the sample's one-node graph is exported (subgraphs
included) and evaluated there, so export and the op's reference are checked together."""
from __future__ import annotations

import numpy as np
from dh_core.conformance.runner import one_node_graph, reference_outputs
from dh_core.conformance.samples import Sample, all_samples
from dh_core.onnx_io import export_model
from onnx.reference import ReferenceEvaluator


def strategy(op: str, dtype: str):
    return all_samples()[op].strategy(dtype)


def onnx_outputs(op: str, sample: Sample) -> list:
    graph = one_node_graph(op, sample, len(reference_outputs(op, sample)))
    model = export_model(graph)
    feeds = {name: x for name, x in zip([f"x{i}" for i in range(len(sample.inputs))], sample.inputs)
             if x is not None}
    feeds.update(sample.outer)
    outputs = ReferenceEvaluator(model).run(None, feeds)
    if op == "Optional":  # onnx.reference wraps the optional's value in a list; dh, like onnxruntime, does not
        return [outputs[0][0]]
    return outputs


def ort_outputs(op: str, sample: Sample, opset: int = 21) -> list:
    """The sample through onnxruntime (exported at an opset it runs)."""
    import onnxruntime

    graph = one_node_graph(op, sample, len(reference_outputs(op, sample)))
    model = export_model(graph, opset=opset)
    feeds = {v.name: x for v, x in zip(graph.inputs, [x for x in sample.inputs if x is not None]
                                       + list(sample.outer.values()))}
    sess = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def ours(op: str, sample: Sample) -> list:
    return reference_outputs(op, sample)


def assert_same(got, want) -> None:
    """Equal values: arrays (dtype, shape, values with nan), lists of them, or None."""
    if want is None or got is None:
        assert got is None and want is None, f"{got!r} != {want!r}"
        return
    if isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{got!r} != {want!r}"
        for g, w in zip(got, want):
            assert_same(g, w)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_array_equal(got, want)
