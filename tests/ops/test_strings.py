"""String ops and TfIdfVectorizer: our references against onnx.reference (onnxruntime
where onnx.reference departs from the spec), type inference against the real outputs,
and the semantics worth pinning down."""
from __future__ import annotations

import numpy as np
import pytest
from dh_core.conformance.samples import all_samples
from dh_core.ops import registry
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from dh_core import dtypes as dt
from dh_core.errors import GraphError

from .oracle import assert_all_match, infer, infer_compatible, onnx_run, ours

OPS = ["StringNormalizer", "RegexFullMatch", "StringConcat", "StringSplit", "TfIdfVectorizer"]
SAMPLES = all_samples()
CASES = [(op, dtype) for op in OPS for dtype in SAMPLES[op].dtypes]
EXAMPLES = settings(max_examples=20, deadline=None)


def draw(data, op, dtype):
    return data.draw(SAMPLES[op].strategy(dtype), label="sample")


def n_outputs(op: str) -> int:
    return len(registry.get(op).outputs)


def test_every_op_is_registered_with_samples():
    for op in OPS:
        opdef = registry.get(op)
        assert op in SAMPLES, op
        assert set(SAMPLES[op].dtypes) == set(opdef.dtypes(opdef.inputs[0].type)), op


@pytest.mark.parametrize(("op", "dtype"), CASES)
@EXAMPLES
@given(data=st.data())
def test_reference_matches_oracle(op, dtype, data):
    sample = draw(data, op, dtype)
    if op == "StringNormalizer":
        # onnx.reference strips accents (é -> e), drops stopwords inside space-separated
        # strings and drops empty strings; the spec drops the elements equal to a stopword
        # and changes case, nothing else. (onnxruntime needs the en_US.UTF-8 locale
        # installed and rejects an empty X.)
        words = sample.inputs[0].reshape(-1).tolist() + sample.attrs.get("stopwords", [])
        assume(all(w and w.isascii() and " " not in w for w in words))
    # onnx.reference's StringSplit fails on a scalar X (test_string_split_pads_and_counts has one)
    assume(not (op == "StringSplit" and sample.inputs[0].ndim == 0))
    # onnx.reference's TfIdfVectorizer fails on an empty X (pinned below: all zeros)
    assume(not (op == "TfIdfVectorizer" and sample.inputs[0].size == 0))
    oracle_attrs = dict(sample.attrs)
    if op == "TfIdfVectorizer":
        # onnx.reference needs the weights spelled out (they default to 1)
        oracle_attrs.setdefault("weights", [1.0] * (max(oracle_attrs["ngram_indexes"]) + 1))
    want = onnx_run(op, sample.inputs, oracle_attrs, n_outputs(op))
    got = ours(op, sample.inputs, sample.attrs, n_outputs(op))
    assert_all_match(got, want, (1e-6, 1e-6))


@pytest.mark.parametrize(("op", "dtype"), CASES)
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_infer_gives_output_type(op, dtype, data):
    sample = draw(data, op, dtype)
    got = ours(op, sample.inputs, sample.attrs, n_outputs(op))
    inferred = infer(op, sample.inputs, sample.attrs, n_outputs(op))
    assert all(t is not None and infer_compatible(t, g) for t, g in zip(inferred, got)), (inferred, got)


# -- semantics worth pinning down exactly ---------------------------------------
def text(*values, shape=None) -> np.ndarray:
    out = np.array(list(values), dtype=object)
    return out if shape is None else out.reshape(shape)


def run(op, *inputs, n=1, **attrs):
    got = ours(op, list(inputs), attrs, n)
    return got[0] if n == 1 else got


def test_string_normalizer_drops_whole_elements_and_keeps_one_empty_string():
    x = text("Monday", "mon day", "é", shape=(1, 3))
    got = run("StringNormalizer", x, stopwords=["monday", "É"], case_change_action="UPPER")
    assert got.tolist() == [["MON DAY"]]
    got = run("StringNormalizer", text("a", "a"), stopwords=["a"], is_case_sensitive=1)
    assert got.shape == (1,) and got.tolist() == [""]
    assert run("StringNormalizer", text("a", shape=(1, 1)), stopwords=["A"]).tolist() == [[""]]
    with pytest.raises(GraphError, match="case_change_action"):
        run("StringNormalizer", text("a"), case_change_action="TITLE")


def test_regex_full_match_needs_the_whole_string_and_a_valid_pattern():
    assert run("RegexFullMatch", text("ab", "abc", ""), pattern="ab|").tolist() == [True, False, True]
    with pytest.raises(GraphError, match="not a valid regular expression"):
        run("RegexFullMatch", text("a"), pattern="(a")


def test_string_split_pads_and_counts():
    y, z = run("StringSplit", text(" a  b ", "", "c"), n=2)
    assert y.tolist() == [["a", "b"], ["", ""], ["c", ""]] and z.tolist() == [2, 0, 1]
    y, z = run("StringSplit", text("a--b-", ""), n=2, delimiter="-", maxsplit=1)
    assert y.tolist() == [["a", "-b-"], ["", ""]] and z.tolist() == [2, 1]
    y, z = run("StringSplit", np.array("a b", dtype=object), n=2)
    assert y.tolist() == ["a", "b"] and z.shape == () and z == 2
    y, z = run("StringSplit", text(shape=(0, 2)), n=2)
    assert y.shape == (0, 2, 0) and z.shape == (0, 2) and z.dtype == np.int64


def test_tfidf_weights_belong_to_output_columns_and_skips_apply_to_longer_grams():
    attrs = {"mode": "TFIDF", "ngram_counts": [0, 2], "ngram_indexes": [2, 0, 1], "pool_int64s": [7, 8, 7, 9],
             "min_gram_length": 1, "max_gram_length": 2, "max_skip_count": 1, "weights": [0.5, 2.0, 3.0]}
    x = np.array([[7, 8, 9, 7], [9, 9, 9, 9]], np.int64)
    # row 0: unigram 7 twice (column 2), 8 once (column 0); bigram (7, 9) once with one skip (column 1)
    np.testing.assert_array_equal(run("TfIdfVectorizer", x, **attrs), [[0.5, 2.0, 6.0], [0, 0, 0]])
    idf = run("TfIdfVectorizer", x, **{**attrs, "mode": "IDF"})
    np.testing.assert_array_equal(idf, [[0.5, 2.0, 3.0], [0, 0, 0]])
    assert idf.dtype == np.float32
    empty = run("TfIdfVectorizer", np.zeros((2, 0), np.int64), **attrs)
    np.testing.assert_array_equal(empty, np.zeros((2, 3), np.float32))


def test_string_tensors_run_through_a_session():
    from onnx import TensorProto, helper

    from dh_core.session import Session

    node = helper.make_node("StringConcat", ["a", "b"], ["c"])
    graph = helper.make_graph(
        [node, helper.make_node("Equal", ["c", "k"], ["e"])], "g",
        [helper.make_tensor_value_info("a", TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("c", TensorProto.STRING, [2]),
         helper.make_tensor_value_info("e", TensorProto.BOOL, [2])],
        [helper.make_tensor("b", TensorProto.STRING, [], [b"\xc3\xa9"]),
         helper.make_tensor("k", TensorProto.STRING, [2], [b"x\xc3\xa9", b"y"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    session = Session(model, backends=["cpu"])
    c, e = session.run({"a": np.array(["x", "y"])})
    assert c.dtype == object and c.tolist() == ["xé", "yé"] and e.tolist() == [True, False]
    assert session.graph.value_types["a"].dtype == dt.STRING[0]
