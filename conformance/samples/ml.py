"""Samples for the ops of the ai.onnx.ml domain."""
from __future__ import annotations

import numpy as np
from dh_core.ops.ml import LABEL_TYPES, MEMBER
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from dh_core import dtypes as dt

from . import Sample, samples
from .strategies import arrays, elements, shapes

LIST_ATTRS = {"string": "strings", "int64": "int64s", "float32": "floats"}


def _label_values(dtype: str):
    """Distinct values of a LabelEncoder dtype (finite for floats)."""
    return elements(dtype, special=False, min_value=-50, max_value=50)


@samples("LabelEncoder", LABEL_TYPES)
def label_encoder(dtype):
    """Keys of the input's dtype, values of any label dtype, as list attributes where
    the dtype has one, else (or when drawn) as tensors; a default of the values' form
    (onnx.reference and onnxruntime disagree on which default wins when a list and a
    tensor default both apply); inputs mix keys and other values."""

    @st.composite
    def draw(draw_):
        keys = draw_(st.lists(_label_values(dtype), min_size=1, max_size=5,
                              unique_by=lambda v: np.asarray(v, dt.to_numpy(dtype)).item()))
        out = draw_(st.sampled_from(LABEL_TYPES))
        values = draw_(st.lists(_label_values(out), min_size=len(keys), max_size=len(keys)))
        attrs = {}
        for prefix, dtype_, data in (("keys", dtype, keys), ("values", out, values)):
            array = np.array(data, dtype=dt.to_numpy(dtype_))
            if dtype_ in LIST_ATTRS and draw_(st.booleans()):
                attrs[f"{prefix}_{LIST_ATTRS[dtype_]}"] = array.tolist()
            else:
                attrs[f"{prefix}_tensor"] = array
        if "values_tensor" in attrs and draw_(st.booleans()):
            attrs["default_tensor"] = np.array([draw_(_label_values(out))], dtype=dt.to_numpy(out))
        elif "values_tensor" not in attrs and draw_(st.booleans()):
            name = {"string": "default_string", "int64": "default_int64", "float32": "default_float"}[out]
            attrs[name] = draw_(_label_values(out) if out != "float32" else st.floats(-50, 50, width=32))
        element = st.one_of(st.sampled_from(keys), _label_values(dtype))
        x = draw_(hnp.arrays(dt.to_numpy(dtype), shapes(max_dims=3), elements=element))
        return Sample([x], attrs)

    return draw()


@samples("ArrayFeatureExtractor", ("float32", "float64", "int64", "int32") + dt.STRING)
def array_feature_extractor(dtype):
    @st.composite
    def draw(draw_):
        shape = draw_(shapes(min_dims=1, max_dims=3, min_side=1))
        x = draw_(arrays(dtype, shape))
        index_shape = draw_(st.sampled_from([(0,), (1,), (3,), (1, 2), (2, 2)]))
        index = draw_(hnp.arrays(np.int64, index_shape, elements=st.integers(0, shape[-1] - 1)))
        return Sample([x, index])

    return draw()


@samples("Binarizer", ("float32", "float64", "int64", "int32"))
def binarizer(dtype):
    return st.tuples(arrays(dtype, shapes(), min_value=-10, max_value=10), st.floats(-5, 5, width=32)).map(
        lambda xt: Sample([xt[0]], {"threshold": xt[1]}))


@samples("TreeEnsemble", dt.FLOATS, tolerance={"float16": (1e-2, 1e-2)})
def tree_ensemble(dtype):
    """One to three random trees of depth up to 3 over 1 to 3 features, every mode
    (splits drawn from a few values that X shares, so equality matters), nan features
    with their missing-value direction, every aggregate and post transform."""
    np_dtype = np.dtype(dtype)
    split_values = st.sampled_from([-1.0, 0.0, 0.5, 2.0])

    @st.composite
    def draw(draw_):
        n_features, n_targets = draw_(st.integers(1, 3)), draw_(st.integers(1, 3))
        nodes = {k: [] for k in ("modes", "splits", "features", "true", "false", "true_leaf", "false_leaf",
                                 "missing")}
        members: list[float] = []
        leaf_weights, leaf_targets = [], []

        def leaf() -> int:
            leaf_weights.append(draw_(st.floats(-4, 4, width=16)))
            leaf_targets.append(draw_(st.integers(0, n_targets - 1)))
            return len(leaf_weights) - 1

        def grow(depth: int) -> int:
            i = len(nodes["modes"])
            mode = draw_(st.integers(0, MEMBER))
            for key, value in (("modes", mode), ("splits", draw_(split_values)),
                               ("features", draw_(st.integers(0, n_features - 1))),
                               ("missing", draw_(st.integers(0, 1)))):
                nodes[key].append(value)
            for key in ("true", "false", "true_leaf", "false_leaf"):
                nodes[key].append(0)
            if mode == MEMBER:
                members.extend(draw_(st.lists(split_values, min_size=1, max_size=3)) + [np.nan])
            for side in ("true", "false"):
                is_leaf = depth >= 3 or draw_(st.booleans())
                nodes[f"{side}_leaf"][i] = int(is_leaf)
                nodes[side][i] = leaf() if is_leaf else grow(depth + 1)
            return i

        roots = []
        for _ in range(draw_(st.integers(1, 3))):
            if draw_(st.integers(0, 4)) == 0:  # a tree that is a single leaf
                roots.append(len(nodes["modes"]))
                target = leaf()
                for key, value in (("modes", 0), ("splits", 0.0), ("features", 0), ("missing", 0),
                                   ("true", target), ("false", target), ("true_leaf", 1), ("false_leaf", 1)):
                    nodes[key].append(value)
            else:
                roots.append(grow(1))
        attrs = {"n_targets": n_targets, "tree_roots": roots,
                 "nodes_modes": np.array(nodes["modes"], np.uint8),
                 "nodes_splits": np.array(nodes["splits"], np_dtype),
                 "nodes_featureids": nodes["features"], "nodes_truenodeids": nodes["true"],
                 "nodes_falsenodeids": nodes["false"], "nodes_trueleafs": nodes["true_leaf"],
                 "nodes_falseleafs": nodes["false_leaf"], "nodes_missing_value_tracks_true": nodes["missing"],
                 "leaf_weights": np.array(leaf_weights, np_dtype), "leaf_targetids": leaf_targets,
                 "aggregate_function": draw_(st.integers(0, 3)), "post_transform": draw_(st.integers(0, 4))}
        if members:
            attrs["membership_values"] = np.array(members, np_dtype)
        rows = draw_(st.integers(0, 4))
        x = draw_(hnp.arrays(np_dtype, (rows, n_features),
                             elements=st.one_of(split_values, st.just(np.nan), st.floats(-3, 3, width=16))))
        return Sample([x], attrs)

    return draw()
