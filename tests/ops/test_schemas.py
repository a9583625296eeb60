"""Every OpDef's schema agrees with ONNX's own (onnx.defs), the independent oracle."""
from __future__ import annotations

import numpy as np
import onnx
import onnx.defs
import pytest
from onnx import helper

from dh_core import dtypes as dt
from dh_core.ir import DEFAULT_OPSET
from dh_core.ops import REQUIRED, all_ops

OPTION = onnx.defs.OpSchema.FormalParameterOption
ATTR_KINDS = {
    "int": onnx.AttributeProto.INT, "float": onnx.AttributeProto.FLOAT,
    "string": onnx.AttributeProto.STRING, "ints": onnx.AttributeProto.INTS,
    "floats": onnx.AttributeProto.FLOATS, "strings": onnx.AttributeProto.STRINGS,
    "tensor": onnx.AttributeProto.TENSOR, "sparse_tensor": onnx.AttributeProto.SPARSE_TENSOR,
    "graph": onnx.AttributeProto.GRAPH,
    "graphs": onnx.AttributeProto.GRAPHS,
    "type_proto": onnx.AttributeProto.TYPE_PROTO,
}
ONNX_DTYPE = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
              "tensor(bool)": "bool", "tensor(string)": "string", **{f"tensor({d})": d for d in
                                          ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")},
              **{f"tensor({d})": d for d in dt.LOW_PRECISION}}



def dh_key(onnx_type: str) -> str | None:
    """The dh type key of an ONNX type string: "seq(tensor(float))" -> "seq(float32)"."""
    for wrapper in ("seq", "optional"):
        if onnx_type.startswith(wrapper + "(") and onnx_type.endswith(")"):
            inner = dh_key(onnx_type[len(wrapper) + 1:-1])
            return None if inner is None else f"{wrapper}({inner})"
    return ONNX_DTYPE.get(onnx_type)


OPS = all_ops()
DEFAULT_DOMAIN_OPS = [op for op in OPS if op.domain in ("", "ai.onnx")]


def onnx_schema(opdef) -> onnx.defs.OpSchema:
    """ONNX's schema of the op: at the canonical opset for the default domain, the
    newest version for other domains (which version independently of it)."""
    if opdef.domain in ("", "ai.onnx"):
        return onnx.defs.get_schema(opdef.name, DEFAULT_OPSET, "")
    return onnx.defs.get_schema(opdef.name, domain=opdef.domain)


def test_core_issue_ops_are_all_defined():
    wanted = """Add Sub Mul Div Pow Neg Abs Exp Log Sqrt Reciprocal Sin Cos Tanh Erf Sigmoid Relu
    LeakyRelu Elu Selu Gelu HardSigmoid HardSwish Softplus Clip Floor Ceil Round Sign Min Max Mean Sum
    Equal Less Greater LessOrEqual GreaterOrEqual Not And Or Where Cast CastLike IsNaN IsInf ReduceSum
    ReduceMean ReduceMax ReduceMin ReduceProd ReduceL2 ReduceLogSumExp ArgMax ArgMin MatMul Gemm Conv
    ConvTranspose MaxPool AveragePool GlobalAveragePool GlobalMaxPool BatchNormalization
    InstanceNormalization LayerNormalization GroupNormalization Softmax LogSoftmax Reshape Flatten
    Transpose Squeeze Unsqueeze Concat Split Slice Gather GatherElements ScatterND Expand Tile Pad Shape
    Size ConstantOfShape Constant Identity Range Resize DepthToSpace SpaceToDepth TopK CumSum Einsum
    Dropout LSTM GRU RNN OneHot Trilu""".split()
    defined = {op.name for op in DEFAULT_DOMAIN_OPS}
    assert sorted(set(wanted) - defined) == []


def test_ops_of_other_domains_are_checked_too():
    assert {"Adagrad", "Adam", "Momentum"} <= {op.name for op in OPS if op.domain == "ai.onnx.preview.training"}


@pytest.mark.parametrize("opdef", OPS, ids=lambda o: f"{o.domain}.{o.name}" if o.domain else o.name)
def test_schema_matches_onnx(opdef):
    schema = onnx_schema(opdef)
    assert schema.domain == opdef.domain, "domain"
    ours_in = [(p.name, p.optional, p.variadic) for p in opdef.inputs]
    theirs_in = [(p.name, p.option == OPTION.Optional, p.option == OPTION.Variadic) for p in schema.inputs]
    assert ours_in == theirs_in, "inputs"
    for ours_p, theirs_p in zip(opdef.inputs + opdef.outputs, list(schema.inputs) + list(schema.outputs)):
        if ours_p.variadic:
            assert ours_p.min_arity == theirs_p.min_arity, f"{ours_p.name} min_arity"
            assert ours_p.homogeneous == theirs_p.is_homogeneous, f"{ours_p.name} homogeneous"
    ours_out = [(p.name, p.optional, p.variadic) for p in opdef.outputs]
    theirs_out = [(p.name, p.option == OPTION.Optional, p.option == OPTION.Variadic) for p in schema.outputs]
    assert ours_out == theirs_out, "outputs"
    assert sorted(schema.attributes) == sorted(opdef.attrs), "attribute names"
    for name, attr in opdef.attrs.items():
        assert name in schema.attributes, f"attribute {name} is not in ONNX"
        theirs = schema.attributes[name]
        assert ATTR_KINDS[attr.kind] == theirs.type, f"attribute {name} kind"
        default = theirs.default_value
        if default.type == onnx.AttributeProto.UNDEFINED or default.name == "":
            assert attr.required == theirs.required, f"attribute {name} required"
            continue
        onnx_default = helper.get_attribute_value(default)
        if isinstance(onnx_default, bytes):
            onnx_default = onnx_default.decode()
        if isinstance(onnx_default, list) and onnx_default and isinstance(onnx_default[0], bytes):
            onnx_default = [v.decode() for v in onnx_default]
        if isinstance(onnx_default, onnx.TensorProto):
            onnx_default = onnx.numpy_helper.to_array(onnx_default)
            np.testing.assert_array_equal(attr.default, onnx_default)
            continue
        assert attr.default is not REQUIRED, f"attribute {name} has a default in ONNX"
        assert attr.default == pytest.approx(onnx_default), f"attribute {name} default"
    constraints = {c.type_param_str: c.allowed_type_strs for c in schema.type_constraints}
    for param in opdef.inputs + opdef.outputs:
        onnx_param = next(p for p in list(schema.inputs) + list(schema.outputs) if p.name == param.name)
        allowed = constraints.get(onnx_param.type_str, [onnx_param.type_str])
        onnx_dtypes = {dh_key(t) for t in allowed} - {None}
        ours = set(opdef.dtypes(param.type))
        assert ours <= onnx_dtypes, f"{param.name}: {sorted(ours - onnx_dtypes)} not allowed by ONNX"
        assert "float32" in ours or not ({"float32"} & onnx_dtypes), f"{param.name} lacks float32"
