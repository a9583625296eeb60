"""Linear algebra ops: MatMul, Gemm, Einsum."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import ShapeError
from dh_core.ir import Dim, TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register
from .shapes import broadcast

MATMUL_TYPES = ("float16", "float32", "float64", "uint32", "uint64", "int32", "int64")


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """numpy matmul in the inputs' dtype; float16 accumulates in float32."""
    if a.dtype == np.float16:
        return np.matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.float16)
    return np.asarray(np.matmul(a, b))


def _same_dim(a: Dim, b: Dim) -> Dim:
    """One dim from two that must agree: the known one, when only one is known."""
    if isinstance(a, int) and isinstance(b, int) and a != b:
        raise ShapeError(f"dims {a} and {b} do not match")
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return a if a == b else None


def matmul_shape(a: Sequence[Dim] | None, b: Sequence[Dim] | None, node: str | None = None):
    """The output shape of numpy matmul on shapes with symbolic dims; None if a rank is unknown."""
    if a is None or b is None:
        return None
    if len(a) == 0 or len(b) == 0:
        raise ShapeError("MatMul inputs must have rank 1 or more", node)
    a2 = (1,) + tuple(a) if len(a) == 1 else tuple(a)
    b2 = tuple(b) + (1,) if len(b) == 1 else tuple(b)
    try:
        _same_dim(a2[-1], b2[-2])
    except ShapeError as e:
        raise ShapeError(f"MatMul inner {e}", node) from None
    batch = broadcast(a2[:-2], b2[:-2], node=node)
    return batch + ((a2[-2],) if len(a) > 1 else ()) + ((b2[-1],) if len(b) > 1 else ())


@register
class MatMul(OpDef):
    name = "MatMul"
    inputs = (Param("A", "T"), Param("B", "T"))
    outputs = (Param("Y", "T"),)
    constraints = {"T": MATMUL_TYPES}

    def infer(self, ctx: InferContext):
        (dtype,) = self.output_dtypes(ctx)
        shape = matmul_shape(ctx.shape(0), ctx.shape(1), ctx.node.name)
        return [None if dtype is None else TensorType(dtype, shape)]

    def reference(self, a, b):
        return matmul(a, b)


@register
class Gemm(OpDef):
    """Y = alpha * A' @ B' + beta * C, with A' and B' optionally transposed 2-D matrices."""

    name = "Gemm"
    inputs = (Param("A", "T"), Param("B", "T"), Param("C", "T", optional=True))
    outputs = (Param("Y", "T"),)
    attrs = {"alpha": Attr("float", 1.0), "beta": Attr("float", 1.0),
             "transA": Attr("int", 0), "transB": Attr("int", 0)}
    constraints = {"T": MATMUL_TYPES}
    composite = True

    def infer(self, ctx: InferContext):
        (dtype,) = self.output_dtypes(ctx)
        a, b = ctx.shape(0), ctx.shape(1)
        for name, s in (("A", a), ("B", b)):
            if s is not None and len(s) != 2:
                raise ShapeError(f"Gemm input {name} must be 2-D, got rank {len(s)}", ctx.node.name)
        shape = self._shape(a, b, ctx)
        return [None if dtype is None else TensorType(dtype, shape)]

    @staticmethod
    def _shape(a, b, ctx: InferContext) -> tuple:
        """(M, N) from A and B (2-D or unknown), checking K and that C broadcasts."""
        if a is None or b is None:
            m = None if a is None else a[1 if ctx.attrs["transA"] else 0]
            n = None if b is None else b[0 if ctx.attrs["transB"] else 1]
            return (m, n)
        a = a[::-1] if ctx.attrs["transA"] else a
        b = b[::-1] if ctx.attrs["transB"] else b
        try:
            _same_dim(a[1], b[0])
        except ShapeError as e:
            raise ShapeError(f"Gemm inner {e}", ctx.node.name) from None
        shape = (a[0], b[1])
        c = ctx.shape(2) if ctx.has(2) else None
        if c is not None and not _broadcasts_to(c, shape):
            raise ShapeError(f"Gemm C {list(c)} does not broadcast to {list(shape)}", ctx.node.name)
        return shape

    def reference(self, a, b, c=None, *, alpha, beta, transA, transB):
        y = matmul(a.T if transA else a, b.T if transB else b)
        if alpha != 1.0:
            y = y * _float_attr(alpha, y.dtype)
        if c is not None and beta != 0.0:
            y = y + (c * _float_attr(beta, c.dtype) if beta != 1.0 else c)
        return y

    def decompose(self, d):
        alpha, beta, dtype = d.attrs["alpha"], d.attrs["beta"], d.dtype(0)
        a = d.op("Transpose", d.inputs[0], perm=[1, 0]) if d.attrs["transA"] else d.inputs[0]
        b = d.op("Transpose", d.inputs[1], perm=[1, 0]) if d.attrs["transB"] else d.inputs[1]
        tail: list[tuple[str, str]] = []  # (op, second operand) applied after the MatMul
        if alpha != 1.0:
            tail.append(("Mul", d.const(_float_attr(alpha, dtype))))
        if len(d.inputs) > 2 and d.inputs[2] and beta != 0.0:
            c = d.inputs[2] if beta == 1.0 else d.op("Mul", d.inputs[2], d.const(_float_attr(beta, dtype)))
            tail.append(("Add", c))
        y = d.op("MatMul", a, b, outputs=d.outputs if not tail else 1)
        for i, (op, operand) in enumerate(tail):
            y = d.op(op, y, operand, outputs=d.outputs if i == len(tail) - 1 else 1)


def _float_attr(value: float, dtype) -> np.ndarray:
    """A float attribute as ONNX stores it (float32), as a scalar of dtype."""
    return np.asarray(np.float32(value), dtype)


def _broadcasts_to(src: Sequence[Dim], dst: Sequence[Dim]) -> bool:
    """Whether src broadcasts unidirectionally to dst (unknown dims are given the benefit)."""
    if len(src) > len(dst):
        return False
    return all(s == 1 or s == t or not isinstance(s, int) or not isinstance(t, int)
               for s, t in zip(reversed(src), reversed(dst)))


def _einsum_terms(equation: str, ranks: Sequence[int]) -> tuple[list[str], str]:
    """Input terms and the output term of an einsum equation, with each ellipsis
    replaced by one placeholder character per broadcast dim and an implicit output
    made explicit."""
    eq = equation.replace(" ", "")
    lhs, arrow, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ranks):
        raise ShapeError(f"einsum '{equation}' has {len(terms)} terms for {len(ranks)} inputs")
    n_ell = 0
    for t, r in zip(terms, ranks):
        if "..." in t:
            n_ell = max(n_ell, r - len(t.replace("...", "")))
    ell = "".join(chr(0x100 + i) for i in range(n_ell))
    expanded = []
    for t, r in zip(terms, ranks):
        if "..." in t:
            t = t.replace("...", ell[n_ell - (r - len(t.replace("...", ""))):])
        if len(t) != r:
            raise ShapeError(f"einsum term '{t}' does not match an input of rank {r}")
        expanded.append(t)
    if arrow:
        out = rhs.replace("...", ell)
    else:
        letters = "".join(expanded)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1 and c not in ell))
    return expanded, out


@register
class Einsum(OpDef):
    name = "Einsum"
    inputs = (Param("Inputs", "T", variadic=True),)
    outputs = (Param("Output", "T"),)
    attrs = {"equation": Attr("string")}
    constraints = {"T": dt.NUMERIC + dt.BFLOAT16}

    def infer(self, ctx: InferContext):
        (dtype,) = self.output_dtypes(ctx)
        shapes = [ctx.shape(i) for i in range(len(ctx.node.inputs))]
        if dtype is None or any(s is None for s in shapes):
            return [None if dtype is None else TensorType(dtype, None)]
        terms, out = _einsum_terms(ctx.attrs["equation"], [len(s) for s in shapes])
        dims: dict[str, Dim] = {}
        for term, shape in zip(terms, shapes):
            for c, size in zip(term, shape):
                prev = dims.get(c, 1)
                dims[c] = size if prev == 1 else prev if size == 1 else _einsum_dim(prev, size, c)
        return [TensorType(dtype, tuple(dims[c] for c in out))]

    def reference(self, *inputs, equation):
        """numpy einsum; float16 and bfloat16 accumulate in float32."""
        eq = equation.replace(" ", "")
        if inputs[0].dtype in (np.float16, dt.to_numpy("bfloat16")):
            return np.asarray(np.einsum(eq, *(x.astype(np.float32) for x in inputs))).astype(inputs[0].dtype)
        return np.asarray(np.einsum(eq, *inputs)).astype(inputs[0].dtype, copy=False)


def _einsum_dim(a: Dim, b: Dim, label: str) -> Dim:
    try:
        return _same_dim(a, b)
    except ShapeError as e:
        raise ShapeError(f"einsum label '{label}': {e}") from None
