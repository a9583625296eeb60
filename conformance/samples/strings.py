"""Samples for the string ops and TfIdfVectorizer."""
from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays, broadcast_shapes, shapes

PATTERNS = ("", "a*", "[aA]+", ".*é.*", "(a|b)?-.*", r"\w+", "[^ ]*", "a.b", "(?i)a+", "✓|-", r"\s?[ab]*")
"""RegexFullMatch patterns, ``\\w`` and ``\\s`` among them (Unicode-aware in Python's
re, ASCII-only in RE2: they differ on é)."""


@samples("StringNormalizer", dt.STRING)
def string_normalizer(dtype):
    @st.composite
    def draw(draw_):
        shape = draw_(st.sampled_from([(0,), (1,), (3,), (5,), (1, 0), (1, 1), (1, 4)]))
        x = draw_(arrays(dtype, shape))
        pool = x.reshape(-1).tolist() + ["a", "A", "é"]
        stopwords = draw_(st.one_of(st.none(), st.lists(st.sampled_from(pool), min_size=1, max_size=3)))
        attrs = {"case_change_action": draw_(st.sampled_from(["NONE", "LOWER", "UPPER"])),
                 "is_case_sensitive": draw_(st.integers(0, 1))}
        if stopwords is not None:
            attrs["stopwords"] = stopwords
        return Sample([x], attrs)

    return draw()


@samples("RegexFullMatch", dt.STRING)
def regex_full_match(dtype):
    return st.tuples(arrays(dtype, shapes(max_dims=3)), st.sampled_from(PATTERNS)).map(
        lambda xp: Sample([xp[0]], {"pattern": xp[1]}))


@samples("StringConcat", dt.STRING)
def string_concat(dtype):
    @st.composite
    def draw(draw_):
        return Sample([draw_(arrays(dtype, s)) for s in draw_(broadcast_shapes(2, max_dims=3))])

    return draw()


@samples("StringSplit", dt.STRING)
def string_split(dtype):
    @st.composite
    def draw(draw_):
        x = draw_(arrays(dtype, shapes(max_dims=2)))
        attrs = {}
        delimiter = draw_(st.sampled_from([None, "", "-", " ", "a", "-."]))
        if delimiter is not None:
            attrs["delimiter"] = delimiter
        maxsplit = draw_(st.one_of(st.none(), st.integers(-1, 3)))
        if maxsplit is not None:
            attrs["maxsplit"] = maxsplit
        return Sample([x], attrs)

    return draw()


@samples("TfIdfVectorizer", dt.STRING + ("int32", "int64"))
def tfidf_vectorizer(dtype):
    """A pool of 1- to 3-grams over a few items, X's rows drawn from those items (and one
    outside the pool), every mode, skips and gram lengths within the pool's levels."""
    items = ["a", "b", "é", "c"] if dtype == "string" else [0, 1, 2, 3]

    @st.composite
    def draw(draw_):
        levels = draw_(st.integers(1, 3))
        pool, counts, n_grams = [], [], 0
        for n in range(1, levels + 1):
            counts.append(len(pool))
            grams = draw_(st.lists(st.tuples(*[st.sampled_from(items[:3])] * n), unique=True, min_size=1, max_size=4))
            pool.extend(v for g in grams for v in g)
            n_grams += len(grams)
        weighted = draw_(st.booleans())
        gaps = 0 if weighted else draw_(st.integers(0, 2))  # weights cover every output column
        indexes = draw_(st.permutations(range(n_grams + gaps)))[:n_grams]
        max_gram = draw_(st.integers(1, levels))
        attrs = {"mode": draw_(st.sampled_from(["TF", "IDF", "TFIDF"])), "ngram_counts": counts,
                 "ngram_indexes": list(indexes), "max_skip_count": draw_(st.integers(0, 2)),
                 "min_gram_length": draw_(st.integers(1, max_gram)), "max_gram_length": max_gram,
                 ("pool_strings" if dtype == "string" else "pool_int64s"): pool}
        if weighted:
            attrs["weights"] = draw_(st.lists(st.floats(0, 4, width=32), min_size=n_grams, max_size=n_grams))
        shape = draw_(st.sampled_from([(0,), (1,), (4,), (7,), (1, 5), (2, 6), (3, 0)]))
        x = draw_(hnp.arrays(dt.to_numpy(dtype), shape, elements=st.sampled_from(items)))
        return Sample([x], attrs)

    return draw()

