"""The low-precision element types (bfloat16, float8, float8e8m0, float4, 4- and 2-bit
integers): their names and codes, ONNX in and out, a session, and the cast rules of the
ONNX spec where onnx.reference departs from it."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import onnx
import pytest
from dh_core.onnx_io import export_model, import_model
from dh_core.ops import casting
from onnx import TensorProto, helper, numpy_helper

from dh_core import dtypes as dt
from dh_core.errors import GraphError, InputError, ShapeError
from dh_core.ir import TensorType
from dh_core.session import Session

from .ops.oracle import infer, ours


@pytest.mark.parametrize("name", dt.LOW_PRECISION)
def test_names_codes_and_numpy_dtypes_agree_with_onnx(name):
    code = dt.onnx_code(name)
    assert TensorProto.DataType.Name(code).lower() == name
    assert dt.to_numpy(name) == helper.tensor_dtype_to_np_dtype(code)
    assert dt.from_numpy(dt.to_numpy(name)) == name
    assert dt.from_onnx(code) == name
    assert TensorType(name, (2,)).dtype == name


def test_low_precision_types_stay_out_of_the_op_groups():
    assert not set(dt.LOW_PRECISION) & set(dt.ALL)
    assert set(dt.ALL_TYPES) == set(dt.ALL) | set(dt.LOW_PRECISION)


def _values(name: str) -> np.ndarray:
    return casting.cast(np.array([[0.0, 1.0, 2.0], [-1.0, 0.5, 4.0]], np.float32), name)


def _cast_model(names) -> onnx.ModelProto:
    """Inputs x_<type> and initializers c_<type>, each cast to float32."""
    nodes, inputs, outputs, inits = [], [], [], []
    for name in names:
        code = dt.onnx_code(name)
        inputs.append(helper.make_tensor_value_info(f"x_{name}", code, [2, 3]))
        inits.append(numpy_helper.from_array(_values(name), f"c_{name}"))
        for src in (f"x_{name}", f"c_{name}"):
            nodes.append(helper.make_node("Cast", [src], [f"{src}_f"], to=TensorProto.FLOAT))
            outputs.append(helper.make_tensor_value_info(f"{src}_f", TensorProto.FLOAT, [2, 3]))
    graph = helper.make_graph(nodes, "low_precision", inputs, outputs, inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 28)])


def test_import_run_and_export_keep_every_low_precision_type():
    graph = import_model(_cast_model(dt.LOW_PRECISION))
    for name in dt.LOW_PRECISION:
        assert graph.value_types[f"x_{name}"] == TensorType(name, (2, 3))
        assert dt.name_of(graph.initializers[f"c_{name}"].dtype) == name
    session = Session(graph, backends=["cpu"])
    feeds = {f"x_{name}": _values(name) for name in dt.LOW_PRECISION}
    results = dict(zip(graph.output_names, session.run(feeds)))
    for name in dt.LOW_PRECISION:
        want = casting.widen(_values(name)).astype(np.float32)
        np.testing.assert_array_equal(results[f"x_{name}_f"], want)
        np.testing.assert_array_equal(results[f"c_{name}_f"], want)
    exported = export_model(graph)
    onnx.checker.check_model(exported)
    again = import_model(exported)
    for name in dt.LOW_PRECISION:
        np.testing.assert_array_equal(again.initializers[f"c_{name}"], _values(name))
        assert again.value_types[f"x_{name}"].dtype == name


def test_constant_of_a_low_precision_type_is_imported():
    value = numpy_helper.from_array(np.array([1, -2, 7], ml_dtypes.int4), "v")
    nodes = [helper.make_node("Constant", [], ["c"], value=value),
             helper.make_node("Cast", ["c"], ["y"], to=TensorProto.INT8)]
    graph = helper.make_graph(nodes, "g", [], [helper.make_tensor_value_info("y", TensorProto.INT8, [3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 28)])
    (y,) = Session(import_model(model), backends=["cpu"]).run({})
    np.testing.assert_array_equal(y, np.array([1, -2, 7], np.int8))


def test_session_names_a_wrong_low_precision_input_dtype():
    session = Session(import_model(_cast_model(["float8e4m3fn"])), backends=["cpu"])
    with pytest.raises(InputError, match="has dtype float8e5m2; the model expects float8e4m3fn"):
        session.run({"x_float8e4m3fn": _values("float8e5m2")})


# -- cast rules of the ONNX spec ----------------------------------------------------
def cast(x, to: str, **attrs) -> np.ndarray:
    (y,) = ours("Cast", [np.asarray(x)], {"to": dt.onnx_code(to), **attrs})
    return y


def _float(y: np.ndarray) -> list[float]:
    return casting.widen(y).astype(np.float64).tolist()


SPECIAL = np.array([np.nan, np.inf, -np.inf, 1e6, -1e6, -0.0], np.float32)


@pytest.mark.parametrize(("target", "saturated", "unsaturated"), [
    ("float8e4m3fn", [448, -448, 448, -448], [np.nan] * 4),
    ("float8e4m3fnuz", [240, -240, 240, -240], [np.nan] * 4),
    ("float8e5m2", [57344, -57344, 57344, -57344], [np.inf, -np.inf, np.inf, -np.inf]),
    ("float8e5m2fnuz", [57344, -57344, 57344, -57344], [np.nan] * 4),
])
def test_float8_saturation_table(target, saturated, unsaturated):
    for saturate, want in ((1, saturated), (0, unsaturated)):
        y = cast(SPECIAL, target, saturate=saturate)
        got = _float(y)
        assert np.isnan(got[0])
        np.testing.assert_array_equal(got[1:5], want)
        negative_zero = np.signbit(y.astype(np.float32)[5])
        assert negative_zero == (not target.endswith("fnuz"))


def test_float8e8m0_rounding_and_saturation_table():
    x = np.array([0.0, 1.0, 1.5, 1.4, 3.0, np.inf, 2.0 ** 130, 2.0 ** -140, np.nan], np.float64)
    up = _float(cast(x, "float8e8m0"))
    assert up[:5] == [2.0 ** -127, 1, 2, 2, 4]
    assert up[5:8] == [2.0 ** 127, 2.0 ** 127, 2.0 ** -127] and np.isnan(up[8])
    assert _float(cast(x, "float8e8m0", round_mode="down"))[:5] == [2.0 ** -127, 1, 1, 1, 2]
    nearest = _float(cast(x, "float8e8m0", round_mode="nearest", saturate=0))
    assert nearest[1:5] == [1, 2, 1, 4]
    assert all(np.isnan(nearest[i]) for i in (0, 5, 6, 7, 8))


def test_float4_and_small_integers():
    x = np.array([0.25, 0.75, 2.5, 5.0, 7.0, np.inf, -np.inf], np.float32)
    assert _float(cast(x, "float4e2m1")) == [0, 1, 2, 4, 6, 6, -6]
    in_range = np.array([-8, -7.9, -0.5, 7.9], np.float32)
    assert _float(cast(in_range, "int4")) == [-8, -7, 0, 7]
    assert _float(cast(np.array([0.9, 8.5, 15.9], np.float32), "uint4")) == [0, 8, 15]
    assert _float(cast(np.array([-1.5, 1.9], np.float32), "int2")) == [-1, 1]
    out_of_range = np.array([-9.7, 8, 16, np.nan], np.float32)  # open in ONNX: as ml_dtypes converts
    assert _float(cast(out_of_range, "int4")) == _float(out_of_range.astype(ml_dtypes.int4))
    assert _float(cast(np.array([-7, 5, 4], np.int32), "int4")) == [-7, 5, 4]
    assert _float(cast(np.array([-9, 8, 15, 16], np.int64), "int4")) == [7, -8, -1, 0]
    assert _float(cast(np.array([-3, -2, 1, 2, 5], np.int64), "int2")) == [1, -2, 1, -2, 1]
    assert _float(cast(np.array([4, 5, 255], np.uint8), "uint2")) == [0, 1, 3]


def test_cast_rejects_an_unknown_round_mode():
    with pytest.raises(GraphError, match="round_mode must be one of up, down, nearest"):
        infer("Cast", [np.zeros(2, np.float32)], {"to": dt.onnx_code("float8e8m0"), "round_mode": "even"})


# -- BitCast -----------------------------------------------------------------------
def bitcast(x, to: str) -> np.ndarray:
    (y,) = ours("BitCast", [np.asarray(x)], {"to": dt.onnx_code(to)})
    return y


def test_bitcast_reinterprets_bits():
    assert bitcast(np.float32(1.0), "int32") == 0x3F800000
    assert bitcast(np.array([1.0], ml_dtypes.bfloat16), "uint16")[0] == 0x3F80
    assert _float(bitcast(np.array([-1, 7], ml_dtypes.int4), "uint4")) == [15, 7]
    assert _float(bitcast(np.array([15, 1], ml_dtypes.uint4), "float4e2m1")) == [-6, 0.5]
    assert _float(bitcast(np.array([3], ml_dtypes.uint2), "int2")) == [-1]
    assert bitcast(np.array([0x38], np.uint8), "float8e4m3fn").astype(np.float32)[0] == 1.0


def test_bitcast_needs_equal_widths():
    x = np.zeros(3, np.float32)
    with pytest.raises(ShapeError, match="the widths differ"):
        infer("BitCast", [x], {"to": dt.onnx_code("int64")})
    with pytest.raises(ShapeError, match="bit widths differ"):
        ours("BitCast", [np.zeros(2, ml_dtypes.int4)], {"to": dt.onnx_code("int8")})
