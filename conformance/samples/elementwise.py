"""Samples for the elementwise ops."""
from __future__ import annotations

from hypothesis import strategies as st

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays, broadcast_shapes, shapes


def unary(dtype, **element_kwargs):
    return arrays(dtype, shapes(), **element_kwargs).map(lambda x: Sample([x]))


def binary(dtype, **element_kwargs):
    @st.composite
    def draw(draw_):
        sa, sb = draw_(broadcast_shapes(2))
        return Sample([draw_(arrays(dtype, sa, **element_kwargs)), draw_(arrays(dtype, sb, **element_kwargs))])

    return draw()


samples("Add", dt.NUMERIC)(binary)
samples("Exp", dt.FLOATS)(lambda dtype: unary(dtype, min_value=-20, max_value=20))
samples("Relu", dt.SIGNED_NUMERIC)(unary)


@samples("Cast", dt.ALL)
def cast(dtype):
    targets = st.sampled_from([d for d in dt.ALL])
    return st.tuples(arrays(dtype, shapes(), special=False, min_value=-100, max_value=100), targets).map(
        lambda xt: Sample([xt[0]], {"to": dt.onnx_code(xt[1])}))
