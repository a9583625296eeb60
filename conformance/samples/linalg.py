"""Samples for the linear-algebra ops: MatMul, Gemm, Einsum.

Their values are finite: BLAS kernels skip zero multiplicands (gemv does), so whether
0 * nan or 0 * inf reaches a sum differs between correct implementations."""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dh_core import dtypes as dt
from dh_core.ops.linalg import MATMUL_TYPES

from . import Sample, samples
from .strategies import arrays

SPECIALS = (np.nan, np.inf, -np.inf)


def values(dtype: str, shape, *, bound: float = 10.0, special: bool = True, nonnegative: bool = False):
    """Arrays whose elements lie in [-bound, bound] ([0, bound] when ``nonnegative`` or
    unsigned), with at most two nan/inf sprinkled into float arrays when ``special``.

    Sums of products stay accurate and finite, and a few special values still show
    how they propagate without turning every output into nan."""
    unsigned = np.dtype(dtype).kind == "u"
    lo = 0 if nonnegative or unsigned else -bound
    finite = arrays(dtype, shape, special=False, min_value=lo, max_value=bound)
    if not special or np.dtype(dtype).kind != "f":
        return finite

    @st.composite
    def draw(draw_):
        x = draw_(finite)
        if x.size:
            for i in draw_(st.lists(st.integers(0, x.size - 1), max_size=2)):
                x.flat[i] = draw_(st.sampled_from(SPECIALS))
        return x

    return draw()


@samples("MatMul", MATMUL_TYPES, {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5)})
def matmul(dtype):
    @st.composite
    def draw(draw_):
        sa, sb = draw_(hnp.mutually_broadcastable_shapes(
            signature="(m?,n),(n,p?)->(m?,p?)", max_dims=4, min_side=0, max_side=4)).input_shapes
        return Sample([draw_(values(dtype, sa, special=False)), draw_(values(dtype, sb, special=False))])

    return draw()


def _scalars(dtype: str):
    """alpha/beta values: integral for integer types (nonnegative for unsigned)."""
    kind = np.dtype(dtype).kind
    if kind == "u":
        return st.sampled_from([1.0, 0.0, 2.0])
    if kind == "i":
        return st.sampled_from([1.0, 0.0, 2.0, -1.0])
    return st.sampled_from([1.0, 0.0, 0.5, -2.0, 1.25])


@samples("Gemm", MATMUL_TYPES, {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5)})
def gemm(dtype):
    @st.composite
    def draw(draw_):
        m, k, n = (draw_(st.integers(0, 4)) for _ in range(3))
        trans_a, trans_b = draw_(st.booleans()), draw_(st.booleans())
        a = draw_(values(dtype, (k, m) if trans_a else (m, k), special=False))
        b = draw_(values(dtype, (n, k) if trans_b else (k, n), special=False))
        c_shape = draw_(st.sampled_from([None, (), (n,), (1, n), (m, 1), (m, n), (1, 1)]))
        c = None if c_shape is None else draw_(values(dtype, c_shape, special=False))
        attrs = {"alpha": draw_(_scalars(dtype)), "beta": draw_(_scalars(dtype)),
                 "transA": int(trans_a), "transB": int(trans_b)}
        return Sample([a, b] if c is None else [a, b, c], attrs)

    return draw()


EINSUM_EQUATIONS = (
    "ij,jk->ik", "ij,jk", "ij->ji", "ii->i", "ii", "i,i", "i,i->", "ij->", "ij->j", "i,j->ij",
    "bij,bjk->bik", "ijk->kji", "ij,kj->ik", "ij,jk,kl->il", " ab , bc -> ac ", "ij,j->i",
    "...ij,...jk->...ik", "...i->...", "...ii->...i", "i...->...", "...j,j", "abc,abc->",
)


def _einsum_shapes(equation: str):
    """Operand shapes for an equation: one size per label, broadcastable ellipsis dims."""
    lhs = equation.replace(" ", "").split("->")[0].split(",")
    labels = sorted(set("".join(lhs).replace(".", "")))

    @st.composite
    def draw(draw_):
        size = {c: draw_(st.integers(0, 3)) for c in labels}
        ell = draw_(hnp.mutually_broadcastable_shapes(num_shapes=len(lhs), max_dims=2, min_side=0,
                                                      max_side=3)).input_shapes
        shapes = []
        for term, e in zip(lhs, ell):
            head, dots, tail = term.partition("...")
            dims = [size[c] for c in head] + (list(e) if dots else []) + [size[c] for c in tail]
            shapes.append(tuple(dims))
        return shapes

    return draw()


@samples("Einsum", dt.NUMERIC + dt.BFLOAT16, {"float16": (1e-2, 1e-2), "float32": (1e-4, 1e-5),
                                             "bfloat16": (2e-2, 2e-2)})
def einsum(dtype):
    @st.composite
    def draw(draw_):
        equation = draw_(st.sampled_from(EINSUM_EQUATIONS))
        shapes = draw_(_einsum_shapes(equation))
        bound = 3 if np.dtype(dtype).itemsize == 1 else 10
        return Sample([draw_(values(dtype, s, bound=bound, special=False)) for s in shapes], {"equation": equation})

    return draw()
