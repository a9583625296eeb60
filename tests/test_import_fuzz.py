"""Property: the importer reads any file, however corrupted or mutated, into a Graph or
raises one of dh's own errors (a DHError with a one-line message), never anything else.

Hypothesis starts from small valid models (opsets 6, 11, 13 and 21: Conv, Gemm,
Reshape of a Constant, Clip, Split, an If with subgraphs) and truncates their bytes,
flips bytes, or mutates protobuf fields: op names and domains, inputs and outputs
(missing, dangling), attribute kinds and values, element type codes, dims, opsets,
external-data references to missing or short files, value infos.
"""
from __future__ import annotations

import os
import tempfile

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from dh_core.errors import DHError
from dh_core.onnx_io import import_model

RNG = np.random.default_rng(5)
OPS = ["Relu", "Conv", "Gemm", "Reshape", "Clip", "Split", "If", "Loop", "Scan", "Constant", "Pad", "Resize",
       "Upsample", "Softmax", "BatchNormalization", "Add", "Cast", "ReduceSum", "Slice", "", "Frobnicate",
       "Conv\x00", "ConstantOfShape", "TopK", "Squeeze", "Dropout", "GroupNormalization", "Scatter", "DFT"]
DOMAINS = ["", "ai.onnx", "com.example", "ai.onnx.ml", "ai.onnx.preview.training", "\xff"]
NAMES = ["x", "y", "c", "", "w", "nowhere", "target", "cond", "then_out", "a" * 300]


def weights(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(np.float32)


def base_model(opset: int) -> onnx.ModelProto:
    """x[N,2,4,4] -> Conv -> Clip -> Reshape (Constant shape) -> Gemm -> Split -> If."""
    then_branch = helper.make_graph([helper.make_node("Relu", ["s0"], ["then_out"])], "then", [],
                                    [helper.make_tensor_value_info("then_out", TensorProto.FLOAT, ["N", 2])])
    else_branch = helper.make_graph([helper.make_node("Neg", ["s1"], ["else_out"])], "else", [],
                                    [helper.make_tensor_value_info("else_out", TensorProto.FLOAT, ["N", 2])])
    clip = helper.make_node("Clip", ["c"], ["cl"], name="clip", min=-1.0, max=1.0) if opset < 11 else \
        helper.make_node("Clip", ["c", "lo", "hi"], ["cl"], name="clip")
    split = helper.make_node("Split", ["g"], ["s0", "s1"], name="split", axis=1)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1], kernel_shape=[3, 3]),
        clip,
        helper.make_node("Constant", [], ["target"], name="shape", value=numpy_helper.from_array(np.array([0, -1]))),
        helper.make_node("Reshape", ["cl", "target"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc", "fc_b"], ["g"], name="fc", transB=1),
        split,
        helper.make_node("If", ["cond"], ["y"], name="branch", then_branch=then_branch, else_branch=else_branch),
    ]
    inits = [numpy_helper.from_array(weights(3, 2, 3, 3), "w"), numpy_helper.from_array(weights(3), "b"),
             numpy_helper.from_array(weights(4, 48), "fc"), numpy_helper.from_array(weights(4), "fc_b"),
             numpy_helper.from_array(np.float32(-1), "lo"), numpy_helper.from_array(np.float32(1), "hi")]
    graph = helper.make_graph(nodes, "fuzz", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 4, 4]),
                                              helper.make_tensor_value_info("cond", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])], inits,
                              value_info=[helper.make_tensor_value_info("c", TensorProto.FLOAT, ["N", 3, 4, 4])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


BASES = {opset: base_model(opset).SerializeToString() for opset in (6, 11, 13, 21)}


# -- mutations of the protobuf ------------------------------------------------------------
def any_attribute(draw, name: str) -> AttributeProto:
    kind = draw(st.sampled_from(["int", "float", "string", "ints", "floats", "strings", "tensor", "graph",
                                 "undefined", "ref", "bytes"]))
    if kind == "int":
        return helper.make_attribute(name, draw(st.integers(-(2**63), 2**63 - 1)))
    if kind == "float":
        return helper.make_attribute(name, draw(st.floats(allow_nan=True, width=32)))
    if kind == "string":
        return helper.make_attribute(name, draw(st.text(max_size=5)))
    if kind == "bytes":
        return helper.make_attribute(name, draw(st.binary(min_size=1, max_size=5)))
    if kind == "ints":
        return helper.make_attribute(name, draw(st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=5)))
    if kind == "floats":
        return helper.make_attribute(name, draw(st.lists(st.floats(width=32), min_size=1, max_size=4)))
    if kind == "strings":
        return helper.make_attribute(name, draw(st.lists(st.text(max_size=3), min_size=1, max_size=3)))
    if kind == "tensor":
        return helper.make_attribute(name, numpy_helper.from_array(np.arange(draw(st.integers(0, 4)))))
    if kind == "graph":
        sub = helper.make_graph([helper.make_node("Relu", ["x"], ["z"])], "sub", [],
                                [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)])
        return helper.make_attribute(name, sub)
    attr = AttributeProto(name=name)
    if kind == "ref":
        attr.ref_attr_name = "outer"
        attr.type = AttributeProto.INT
    else:
        attr.type = draw(st.sampled_from(sorted(AttributeProto.AttributeType.values())))
    return attr


def tensors_of(model: onnx.ModelProto) -> list[TensorProto]:
    found = list(model.graph.initializer)
    for node in model.graph.node:
        found.extend(a.t for a in node.attribute if a.type == AttributeProto.TENSOR)
    return found


@st.composite
def mutate(draw, model: onnx.ModelProto, base_dir: str) -> None:
    """Apply one random mutation to ``model`` in place."""
    g = model.graph
    nodes = [n for n in g.node]
    for n in list(nodes):
        for a in n.attribute:
            if a.type == AttributeProto.GRAPH:
                nodes.extend(a.g.node)
    node = draw(st.sampled_from(nodes)) if nodes else None
    what = draw(st.sampled_from(["op", "domain", "drop_input", "add_input", "rename_input", "rename_output",
                                 "drop_output", "attr_kind", "attr_drop", "dtype", "dims", "raw_data", "external",
                                 "opset", "ir_version", "value_info", "drop_node", "elem_type", "dim_value",
                                 "graph_output", "duplicate_node", "sparse", "function"]))
    if what == "op" and node is not None:
        node.op_type = draw(st.sampled_from(OPS))
    elif what == "domain" and node is not None:
        node.domain = draw(st.sampled_from(DOMAINS))
    elif what == "drop_input" and node is not None and node.input:
        del node.input[draw(st.integers(0, len(node.input) - 1))]
    elif what == "add_input" and node is not None:
        node.input.append(draw(st.sampled_from(NAMES)))
    elif what == "rename_input" and node is not None and node.input:
        node.input[draw(st.integers(0, len(node.input) - 1))] = draw(st.sampled_from(NAMES))
    elif what == "rename_output" and node is not None and node.output:
        node.output[draw(st.integers(0, len(node.output) - 1))] = draw(st.sampled_from(NAMES))
    elif what == "drop_output" and node is not None and node.output:
        del node.output[draw(st.integers(0, len(node.output) - 1))]
    elif what == "attr_kind" and node is not None:
        names = [a.name for a in node.attribute] + ["axis", "value", "to", "pads", "then_branch", "min"]
        name = draw(st.sampled_from(names))
        kept = [a for a in node.attribute if a.name != name]
        del node.attribute[:]
        node.attribute.extend([*kept, any_attribute(draw, name)])
    elif what == "attr_drop" and node is not None and node.attribute:
        del node.attribute[draw(st.integers(0, len(node.attribute) - 1))]
    elif what in ("dtype", "dims", "raw_data", "external"):
        tensor = draw(st.sampled_from(tensors_of(model)))
        if what == "dtype":
            tensor.data_type = draw(st.integers(-3, 30))
        elif what == "dims":
            dims = draw(st.lists(st.integers(-3, 2**40), max_size=4))
            del tensor.dims[:]
            tensor.dims.extend(dims)
        elif what == "raw_data":
            tensor.raw_data = draw(st.binary(max_size=40))
        else:
            external_reference(draw, tensor, base_dir)
    elif what == "opset":
        model.opset_import[0].version = draw(st.integers(-1, 40))
        model.opset_import[0].domain = draw(st.sampled_from(["", "ai.onnx", "com.example"]))
    elif what == "ir_version":
        model.ir_version = draw(st.integers(-1, 20))
    elif what == "value_info":
        vi = draw(st.sampled_from([*g.input, *g.output, *g.value_info]))
        choice = draw(st.sampled_from(["sequence", "map", "optional", "empty", "sparse"]))
        if choice == "sequence":
            vi.type.CopyFrom(helper.make_sequence_type_proto(helper.make_tensor_type_proto(1, [2])))
        elif choice == "map":
            vi.type.CopyFrom(helper.make_map_type_proto(7, helper.make_tensor_type_proto(1, [2])))
        elif choice == "optional":
            vi.type.CopyFrom(helper.make_optional_type_proto(helper.make_tensor_type_proto(1, [2])))
        elif choice == "sparse":
            vi.type.CopyFrom(helper.make_sparse_tensor_type_proto(1, [2]))
        else:
            vi.type.Clear()
    elif what == "elem_type":
        vi = draw(st.sampled_from([*g.input, *g.output, *g.value_info]))
        vi.type.tensor_type.elem_type = draw(st.integers(-3, 30))
    elif what == "dim_value":
        vi = draw(st.sampled_from([*g.input, *g.output, *g.value_info]))
        dims = vi.type.tensor_type.shape.dim
        if dims:
            dim = dims[draw(st.integers(0, len(dims) - 1))]
            if draw(st.booleans()):
                dim.dim_value = draw(st.integers(-(2**63), 2**63 - 1))
            else:
                dim.dim_param = draw(st.text(max_size=3))
    elif what == "graph_output":
        g.output.append(helper.make_tensor_value_info(draw(st.sampled_from(NAMES)), TensorProto.FLOAT, None))
    elif what == "duplicate_node" and node is not None:
        g.node.append(node)
    elif what == "drop_node" and g.node:
        del g.node[draw(st.integers(0, len(g.node) - 1))]
    elif what == "sparse":
        values = numpy_helper.from_array(np.ones(2, np.float32), "sv")
        indices = numpy_helper.from_array(np.array([0, 1], np.int64), "si")
        g.sparse_initializer.append(helper.make_sparse_tensor(values, indices, [4]))
    elif what == "function":
        body = [helper.make_node(draw(st.sampled_from(OPS)), ["a"], ["b"])]
        model.functions.append(helper.make_function("local", "Fn", ["a"], ["b"], body,
                                                     [helper.make_opsetid("", 21)]))
        g.node.append(helper.make_node("Fn", ["x"], ["fn_out"], domain="local"))
        model.opset_import.append(helper.make_opsetid("local", 1))


def external_reference(draw, tensor: TensorProto, base_dir: str) -> None:
    """Point the tensor at external data: a missing file, a short one, or odd offsets."""
    location = draw(st.sampled_from(["missing.bin", "short.bin", "", "../outside.bin", "/etc/hostname", "sub"]))
    tensor.ClearField("raw_data")
    tensor.ClearField("float_data")
    tensor.ClearField("int64_data")
    tensor.data_location = TensorProto.EXTERNAL
    del tensor.external_data[:]
    entries = {"location": location}
    if draw(st.booleans()):
        entries["offset"] = str(draw(st.integers(-5, 10**6)))
    if draw(st.booleans()):
        entries["length"] = draw(st.sampled_from(["4", "-1", "abc", "100000000"]))
    for key, value in entries.items():
        tensor.external_data.add(key=key, value=value)


# -- the property -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "short.bin"), "wb") as f:
            f.write(b"\x01\x02")
        os.mkdir(os.path.join(tmp, "sub"))
        yield tmp


def import_or_dh_error(data: bytes, workdir: str) -> None:
    path = os.path.join(workdir, "model.onnx")
    with open(path, "wb") as f:
        f.write(data)
    try:
        import_model(path)
    except DHError as exc:
        message = str(exc)
        assert "\n" not in message and message.strip() == message and message


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@FUZZ
@given(opset=st.sampled_from(sorted(BASES)), data=st.data())
def test_truncated_files_raise_dh_errors(workdir, opset, data):
    raw = BASES[opset]
    cut = data.draw(st.integers(0, len(raw) - 1))
    import_or_dh_error(raw[:cut], workdir)


@FUZZ
@given(opset=st.sampled_from(sorted(BASES)), data=st.data())
def test_flipped_bytes_raise_dh_errors(workdir, opset, data):
    raw = bytearray(BASES[opset])
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(raw) - 1))
        raw[position] ^= data.draw(st.integers(1, 255))
    import_or_dh_error(bytes(raw), workdir)


@settings(FUZZ, max_examples=400)
@given(opset=st.sampled_from(sorted(BASES)), data=st.data())
def test_mutated_models_import_or_raise_dh_errors(workdir, opset, data):
    model = onnx.ModelProto()
    model.ParseFromString(BASES[opset])
    for _ in range(data.draw(st.integers(1, 3))):
        data.draw(mutate(model, workdir))
    try:
        raw = model.SerializeToString()
    except ValueError:  # protobuf refuses to serialize what no file can hold
        return
    import_or_dh_error(raw, workdir)


def test_the_base_models_import():
    for opset, raw in BASES.items():
        model = onnx.ModelProto()
        model.ParseFromString(raw)
        graph = import_model(model)
        assert graph.opset == opset
        assert [n.op for n in graph.nodes][:1] == ["Conv"] and graph.nodes[-1].op == "If"
        assert "target" in graph.initializers


def session_base(opset: int) -> bytes:
    """The base model without its If (no control flow in the library): all of it runs."""
    model = base_model(opset)
    del model.graph.node[-1]
    del model.graph.input[1]
    model.graph.output[0].name = "s0"
    return model.SerializeToString()


SESSION_BASES = {opset: session_base(opset) for opset in (6, 13, 21)}


@settings(FUZZ, max_examples=100)
@given(opset=st.sampled_from(sorted(SESSION_BASES)), data=st.data())
def test_mutated_models_reach_a_session_or_raise_dh_errors(workdir, opset, data):
    """What ``dh run`` does before running: import, verify, infer types, fold constants."""
    import dh_core as dh

    model = onnx.ModelProto()
    model.ParseFromString(SESSION_BASES[opset])
    for _ in range(data.draw(st.integers(1, 3))):
        data.draw(mutate(model, workdir))
    try:
        dh.Session(model, fallback="allow")
    except DHError as exc:
        assert "\n" not in str(exc)


# -- the errors the fuzzing led to ---------------------------------------------------------
def one_line_error(model: onnx.ModelProto, *fragments: str) -> None:
    with pytest.raises(DHError) as info:
        import_model(model)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message


def edited(opset: int = 13) -> onnx.ModelProto:
    model = onnx.ModelProto()
    model.ParseFromString(BASES[opset])
    return model


def test_too_few_inputs_name_the_node_and_op():
    model = edited()
    del model.graph.node[0].input[:]
    one_line_error(model, "node 'conv'", "Conv of opset 13 takes 2 to 3 inputs, not 0")


def test_a_constant_without_output_is_refused():
    model = edited()
    del model.graph.node[2].output[:]
    one_line_error(model, "node 'shape'", "Constant of opset 13 has 1 outputs, not 0")


def test_a_missing_required_attribute_is_named():
    model = edited(6)
    model.graph.node.append(helper.make_node("Upsample", ["x"], ["up"], name="up"))
    model.opset_import[0].version = 7
    one_line_error(model, "node 'up'", "Upsample of opset 7 needs its attribute 'scales'")


def test_an_attribute_of_the_wrong_kind_is_named():
    model = edited()
    node = model.graph.node[4]
    del node.attribute[:]
    node.attribute.append(helper.make_attribute("transB", "yes"))
    one_line_error(model, "node 'fc'", "attribute 'transB' must be INT, not STRING")


def test_an_op_newer_than_the_model_is_named():
    model = edited(6)
    model.graph.node[0].op_type = "Resize"
    one_line_error(model, "node 'conv'", "op Resize does not exist at opset 6 (it appears in opset 10)")


def test_a_clip_bound_outside_the_data_type_is_named():
    nodes = [helper.make_node("Clip", ["x"], ["y"], name="clip", min=-1.0, max=300.0)]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.UINT8, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 6)])
    one_line_error(model, "node 'clip'", "Clip of opset 6 cannot be converted")


def test_names_that_are_not_utf8_are_refused(tmp_path):
    raw = BASES[13].replace(b"flatten", b"flat\xffen")
    path = tmp_path / "bad_name.onnx"
    path.write_bytes(raw)
    with pytest.raises(DHError, match=r"bad_name.onnx.*node name b'flat\\xffen' is not UTF-8 text"):
        import_model(path)


@pytest.mark.parametrize("version", [0, -3])
def test_an_invalid_opset_version_is_refused(version):
    model = edited()
    model.opset_import[0].version = version
    one_line_error(model, f"opset version {version}", "not valid")
