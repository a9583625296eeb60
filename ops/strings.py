"""String ops: normalization, regular expressions, concatenation, splitting, and the
n-gram counter TfIdfVectorizer (over strings or integers).

String tensors are numpy object arrays of Python ``str`` (see ``dh_core.dtypes.STRING``);
every string result is such an array.
"""
from __future__ import annotations

import re

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import GraphError
from dh_core.ir import TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register
from .shapes import broadcast

STR = dt.STRING[0]


def text_array(values, shape=None) -> np.ndarray:
    """An object array of ``str`` from a nested list (or a flat list and a shape)."""
    out = np.empty(len(values) if shape is None else shape, dtype=object)
    if shape is None:
        out[:] = values
    else:
        out.reshape(-1)[:] = values
    return out


@register
class StringNormalizer(OpDef):
    """Drops the elements equal to a stopword (ignoring case unless ``is_case_sensitive``),
    then lower- or upper-cases the rest. X is ``[C]`` or ``[1, C]``; when every element
    is dropped the result is one empty string, ``[1]`` or ``[1, 1]``. Case rules are
    Unicode's (``str.lower``/``str.upper``); ``locale`` is not consulted."""

    name = "StringNormalizer"
    inputs = (Param("X", STR),)
    outputs = (Param("Y", STR),)
    attrs = {"case_change_action": Attr("string", "NONE"), "is_case_sensitive": Attr("int", 0),
             "locale": Attr("string", None), "stopwords": Attr("strings", None)}
    ACTIONS = {"NONE": str, "LOWER": str.lower, "UPPER": str.upper}

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        if shape is not None and len(shape) not in (1, 2):
            raise GraphError(f"StringNormalizer input 'X' must be [C] or [1, C], got rank {len(shape)}",
                             ctx.node.name)
        return [TensorType(STR, None if shape is None else shape[:-1] + (None,))]

    def reference(self, x, *, case_change_action, is_case_sensitive, locale, stopwords):
        if x.ndim not in (1, 2) or (x.ndim == 2 and x.shape[0] != 1):
            raise GraphError(f"StringNormalizer input 'X' must be [C] or [1, C], got {list(x.shape)}")
        change = self.ACTIONS.get(case_change_action)
        if change is None:
            raise GraphError(f"StringNormalizer case_change_action must be NONE, LOWER or UPPER, "
                             f"got '{case_change_action}'")
        fold = (lambda s: s) if is_case_sensitive else str.lower
        stops = {fold(w) for w in stopwords or ()}
        kept = [change(s) for s in x.reshape(-1) if fold(s) not in stops] or [""]
        return text_array(kept, (1,) * (x.ndim - 1) + (len(kept),))


@register
class RegexFullMatch(OpDef):
    """True where the whole string matches ``pattern``.

    ONNX specifies RE2 syntax; this reference uses Python's ``re``, which reads RE2's
    common syntax alike. Where they differ: ``re`` also accepts backreferences and
    lookaround (RE2 rejects such patterns); ``\\d``, ``\\w``, ``\\s`` and ``\\b`` are
    Unicode-aware in ``re`` but ASCII-only in RE2; RE2's ``\\p{...}`` classes, ``\\C``
    and ``\\Q...\\E`` are errors in ``re``."""

    name = "RegexFullMatch"
    inputs = (Param("X", "T1"),)
    outputs = (Param("Y", "T2"),)
    attrs = {"pattern": Attr("string", None)}
    constraints = {"T1": dt.STRING, "T2": ("bool",)}

    def infer(self, ctx: InferContext):
        return [TensorType("bool", ctx.shape(0))]

    def reference(self, x, *, pattern):
        try:
            regex = re.compile(pattern or "")
        except re.error as exc:
            raise GraphError(f"RegexFullMatch pattern {pattern!r} is not a valid regular expression: {exc}") from None
        out = np.fromiter((regex.fullmatch(s) is not None for s in x.reshape(-1)), dtype=bool, count=x.size)
        return out.reshape(x.shape)


@register
class StringConcat(OpDef):
    """Elementwise ``X + Y`` of two broadcasting string tensors."""

    name = "StringConcat"
    inputs = (Param("X", "T"), Param("Y", "T"))
    outputs = (Param("Z", "T"),)
    constraints = {"T": dt.STRING}

    def infer(self, ctx: InferContext):
        return [TensorType(STR, broadcast(ctx.shape(0), ctx.shape(1), node=ctx.node.name))]

    def reference(self, x, y):
        xb, yb = np.broadcast_arrays(x, y)
        return text_array([a + b for a, b in zip(xb.reshape(-1), yb.reshape(-1))], xb.shape)


@register
class StringSplit(OpDef):
    """Splits each string at ``delimiter`` into at most ``maxsplit + 1`` parts (no limit
    when ``maxsplit`` is unset or negative). Without a delimiter (or an empty one) runs of
    whitespace separate and leading and trailing whitespace is dropped, as Python's
    ``str.split()`` does (which counts Unicode whitespace too). Y pads every row of parts
    with empty strings to the longest; Z holds the number of parts."""

    name = "StringSplit"
    inputs = (Param("X", "T1"),)
    outputs = (Param("Y", "T2"), Param("Z", "T3"))
    attrs = {"delimiter": Attr("string", None), "maxsplit": Attr("int", None)}
    constraints = {"T1": dt.STRING, "T2": dt.STRING, "T3": ("int64",)}

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        return [TensorType(STR, None if shape is None else shape + (None,)), TensorType("int64", shape)]

    def reference(self, x, *, delimiter, maxsplit):
        limit = -1 if maxsplit is None or maxsplit < 0 else maxsplit
        sep = delimiter or None
        parts = [s.split(sep, limit) for s in x.reshape(-1)]
        width = max((len(p) for p in parts), default=0)
        y = text_array([s for p in parts for s in p + [""] * (width - len(p))], x.shape + (width,))
        z = np.array([len(p) for p in parts], dtype=np.int64).reshape(x.shape)
        return y, z


@register
class TfIdfVectorizer(OpDef):
    """Counts the n-grams of ``pool_*`` in each row of X (``[C]`` or ``[N, C]``).

    The pool lists the 1-grams, then the 2-grams, ... flattened; ``ngram_counts[n-1]`` is
    where the n-grams start, and ``ngram_indexes[k]`` is the output column of the k-th
    n-gram of the pool. n-grams of every length from ``min_gram_length`` to
    ``max_gram_length`` are counted, with 0 to ``max_skip_count`` items skipped between
    their elements (1-grams once). ``mode`` TF gives the counts, IDF the weight where
    the count is nonzero, TFIDF count times weight. ``weights[j]`` weighs output column
    j, as onnxruntime and onnx.reference read it (the spec's "weight of the i-th n-gram"
    says the same when ``ngram_indexes`` is 0, 1, 2...); weights default to 1."""

    name = "TfIdfVectorizer"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T1"),)
    attrs = {"max_gram_length": Attr("int"), "max_skip_count": Attr("int"), "min_gram_length": Attr("int"),
             "mode": Attr("string"), "ngram_counts": Attr("ints"), "ngram_indexes": Attr("ints"),
             "pool_int64s": Attr("ints", None), "pool_strings": Attr("strings", None),
             "weights": Attr("floats", None)}
    constraints = {"T": dt.STRING + ("int32", "int64"), "T1": ("float32",)}
    MODES = ("TF", "IDF", "TFIDF")

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        width = max(ctx.attrs["ngram_indexes"], default=-1) + 1
        out = None if shape is None else shape[:-1] + (width,)
        return [TensorType("float32", out)]

    def reference(self, x, *, max_gram_length, max_skip_count, min_gram_length, mode, ngram_counts,
                  ngram_indexes, pool_int64s, pool_strings, weights):
        if mode not in self.MODES:
            raise GraphError(f"TfIdfVectorizer mode must be TF, IDF or TFIDF, got '{mode}'")
        if x.ndim not in (1, 2):
            raise GraphError(f"TfIdfVectorizer input 'X' must be [C] or [N, C], got {list(x.shape)}")
        pool = list(pool_strings) if x.dtype == object else [int(v) for v in pool_int64s or ()]
        columns = self._columns(pool, ngram_counts, ngram_indexes)
        width = max(ngram_indexes, default=-1) + 1
        rows = x if x.ndim == 2 else x.reshape(1, -1)
        counts = np.zeros((rows.shape[0], width), dtype=np.float32)
        for r, row in enumerate(rows):
            items = row.tolist()
            for n in range(max(min_gram_length, 1), max_gram_length + 1):
                for skip in range(max_skip_count + 1 if n > 1 else 1):
                    step = skip + 1
                    for start in range(len(items) - (n - 1) * step):
                        col = columns.get(tuple(items[start:start + (n - 1) * step + 1:step]))
                        if col is not None:
                            counts[r, col] += 1
        w = np.ones(width, dtype=np.float32)
        if weights is not None:
            if len(weights) < width:
                raise GraphError(f"TfIdfVectorizer has {len(weights)} weights for {width} output columns")
            w = np.asarray(weights[:width], dtype=np.float32)
        if mode == "IDF":
            counts = np.where(counts > 0, w, np.float32(0))
        elif mode == "TFIDF":
            counts = counts * w
        return counts.reshape(x.shape[:-1] + (width,))

    @staticmethod
    def _columns(pool: list, ngram_counts: list[int], ngram_indexes: list[int]) -> dict[tuple, int]:
        """Map each pool n-gram (a tuple) to its output column."""
        columns: dict[tuple, int] = {}
        k = 0
        for level, begin in enumerate(ngram_counts):
            n = level + 1
            end = ngram_counts[level + 1] if level + 1 < len(ngram_counts) else len(pool)
            for start in range(begin, end - n + 1, n):
                columns[tuple(pool[start:start + n])] = ngram_indexes[k]
                k += 1
        return columns
