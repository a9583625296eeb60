"""Ops of the ``ai.onnx.ml`` domain (canonical form: its opset 5): LabelEncoder,
ArrayFeatureExtractor, Binarizer and TreeEnsemble."""
from __future__ import annotations

import math
import statistics

import numpy as np

from dh_core import dtypes as dt
from dh_core.errors import GraphError, ShapeError
from dh_core.ir import TensorType

from .base import Attr, InferContext, OpDef, Param
from .registry import register

ML = "ai.onnx.ml"


class MLOp(OpDef):
    domain = ML


# -- LabelEncoder ------------------------------------------------------------------
LABEL_TYPES = dt.STRING + ("int64", "float32", "int32", "int16", "float64")
_LIST_DTYPE = {"strings": "string", "int64s": "int64", "floats": "float32"}
_DEFAULTS = {"string": "default_string", "int": "default_int64", "float": "default_float"}


def _attr_array(attrs: dict, prefix: str) -> np.ndarray | None:
    """The keys or values of a LabelEncoder: its tensor attribute or its list attribute."""
    if attrs.get(f"{prefix}_tensor") is not None:
        return np.asarray(attrs[f"{prefix}_tensor"]).reshape(-1)
    for suffix, dtype in _LIST_DTYPE.items():
        values = attrs.get(f"{prefix}_{suffix}")
        if values is not None:
            return np.asarray(values, dtype=dt.to_numpy(dtype)).reshape(-1)
    return None


def _lookup_keys(a: np.ndarray) -> list:
    """Hashable keys that compare as LabelEncoder does: floats bit for bit (every nan
    alike), other types by value."""
    if a.dtype.kind != "f":
        return a.reshape(-1).tolist()
    canon = np.where(np.isnan(a), np.array(np.nan, a.dtype), a).reshape(-1)
    return canon.view(f"u{a.dtype.itemsize}").tolist()


@register
class LabelEncoder(MLOp):
    """Maps each element of X through ``keys_*`` -> ``values_*`` (list or tensor
    attributes); elements that are no key get the default (``default_tensor``, else
    ``default_string``/``default_int64``/``default_float`` by the values' kind, as
    onnxruntime reads them). Float
    keys match bit for bit, so a nan key matches nan (and 0.0 is not -0.0)."""

    name = "LabelEncoder"
    inputs = (Param("X", "T1"),)
    outputs = (Param("Y", "T2"),)
    attrs = {"default_float": Attr("float", -0.0), "default_int64": Attr("int", -1),
             "default_string": Attr("string", "_Unused"), "default_tensor": Attr("tensor", None),
             "keys_floats": Attr("floats", None), "keys_int64s": Attr("ints", None),
             "keys_strings": Attr("strings", None), "keys_tensor": Attr("tensor", None),
             "values_floats": Attr("floats", None), "values_int64s": Attr("ints", None),
             "values_strings": Attr("strings", None), "values_tensor": Attr("tensor", None)}
    constraints = {"T1": LABEL_TYPES, "T2": LABEL_TYPES}

    def infer(self, ctx: InferContext):
        values = _attr_array(ctx.attrs, "values")
        return [None if values is None else TensorType(dt.of(values), ctx.shape(0))]

    def reference(self, x, **attrs):
        keys, values = _attr_array(attrs, "keys"), _attr_array(attrs, "values")
        if keys is None or values is None or keys.size != values.size:
            raise GraphError("LabelEncoder needs keys and values of one length")
        if (keys.dtype == object) != (x.dtype == object):
            raise GraphError(f"LabelEncoder keys of dtype {dt.of(keys)} cannot match input 'X' of dtype {dt.of(x)}")
        out_dtype = dt.to_numpy(dt.of(values))
        table = dict(zip(_lookup_keys(keys.astype(x.dtype)), values.tolist()))
        default = self._default(attrs, values)
        y = np.array([table.get(k, default) for k in _lookup_keys(x)], dtype=out_dtype)
        return y.reshape(x.shape)

    @staticmethod
    def _default(attrs: dict, values: np.ndarray):
        if attrs["default_tensor"] is not None:
            return np.asarray(attrs["default_tensor"]).reshape(-1)[0]
        kind = "string" if values.dtype == object else "int" if values.dtype.kind in "iu" else "float"
        return attrs[_DEFAULTS[kind]]


# -- ArrayFeatureExtractor and Binarizer ---------------------------------------------
@register
class ArrayFeatureExtractor(MLOp):
    """Selects the entries of the last axis of X that ``Y`` (int64, any shape, read flat)
    names. A 1-D X gives a ``[1, len]`` result, as onnxruntime does."""

    name = "ArrayFeatureExtractor"
    inputs = (Param("X", "T"), Param("Y", "int64"))
    outputs = (Param("Z", "T"),)
    constraints = {"T": ("float32", "float64", "int64", "int32") + dt.STRING}

    def infer(self, ctx: InferContext):
        shape, idx = ctx.shape(0), ctx.shape(1)
        count = None
        if idx is not None and all(isinstance(d, int) for d in idx):
            count = math.prod(idx)
        if shape is None:
            return [TensorType(ctx.dtype(0))]
        lead = (1,) if len(shape) == 1 else shape[:-1]
        return [TensorType(ctx.dtype(0), lead + (count,))]

    def reference(self, x, y):
        index = y.reshape(-1)
        size = x.shape[-1] if x.ndim else 0
        if index.size and (index.min() < 0 or index.max() >= size):
            raise ShapeError(f"ArrayFeatureExtractor index out of range for a last axis of size {size}")
        z = x[..., index]
        return z.reshape(1, -1) if x.ndim == 1 else z


@register
class Binarizer(MLOp):
    """1 where X > threshold, else 0, in the dtype of X."""

    name = "Binarizer"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    attrs = {"threshold": Attr("float", 0.0)}
    constraints = {"T": ("float32", "float64", "int64", "int32")}

    def infer(self, ctx: InferContext):
        return [ctx.types[0]]

    def reference(self, x, *, threshold):
        return (x > np.float32(threshold)).astype(x.dtype)


# -- TreeEnsemble ------------------------------------------------------------------------
LEQ, LT, GTE, GT, EQ, NEQ, MEMBER = range(7)
AVERAGE, SUM, MIN, MAX = range(4)
NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT = range(5)


@register
class TreeEnsemble(MLOp):
    """Sum, average, min or max of the leaf weights that each tree reaches for each row of
    X ``[N, F]``, per target; result ``[N, n_targets]``, then ``post_transform``.

    Interior nodes compare feature ``nodes_featureids`` with ``nodes_splits`` by
    ``nodes_modes`` (LEQ, LT, GTE, GT, EQ, NEQ, or MEMBER of a set; the sets are
    ``membership_values`` in the order of the MEMBER nodes, separated by nan); a nan
    feature goes the true way where ``nodes_missing_value_tracks_true``. A true/false
    successor is a leaf index where ``nodes_trueleafs``/``nodes_falseleafs`` is set.
    A root whose two successors are the same leaf is that leaf. A target that no tree
    reaches is 0 (MIN and MAX as well, as onnxruntime gives); AVERAGE divides by the
    number of trees."""

    name = "TreeEnsemble"
    inputs = (Param("X", "T"),)
    outputs = (Param("Y", "T"),)
    attrs = {"aggregate_function": Attr("int", SUM), "leaf_targetids": Attr("ints"),
             "leaf_weights": Attr("tensor"), "membership_values": Attr("tensor", None),
             "n_targets": Attr("int", None), "nodes_falseleafs": Attr("ints"),
             "nodes_falsenodeids": Attr("ints"), "nodes_featureids": Attr("ints"),
             "nodes_hitrates": Attr("tensor", None), "nodes_missing_value_tracks_true": Attr("ints", None),
             "nodes_modes": Attr("tensor"), "nodes_splits": Attr("tensor"), "nodes_trueleafs": Attr("ints"),
             "nodes_truenodeids": Attr("ints"), "post_transform": Attr("int", NONE), "tree_roots": Attr("ints")}
    constraints = {"T": dt.FLOATS}

    def infer(self, ctx: InferContext):
        shape = ctx.shape(0)
        targets = ctx.attrs.get("n_targets")
        rows = None if shape is None or not shape else shape[0]
        return [TensorType(ctx.dtype(0), (rows, targets))] if ctx.dtype(0) else [None]

    def reference(self, x, **a):
        if x.ndim != 2:
            raise ShapeError(f"TreeEnsemble input 'X' must be [N, F], got {list(x.shape)}")
        n_targets = a["n_targets"]
        if n_targets is None:
            raise GraphError("TreeEnsemble needs attribute 'n_targets'")
        weights = np.asarray(a["leaf_weights"]).reshape(-1).astype(np.float64)
        targets = np.asarray(a["leaf_targetids"], dtype=np.int64)
        leaves = np.stack([self._leaves(x, a, root) for root in a["tree_roots"]]) if a["tree_roots"] else \
            np.zeros((0, x.shape[0]), dtype=np.int64)
        agg = a["aggregate_function"]
        if agg not in (AVERAGE, SUM, MIN, MAX):
            raise GraphError(f"TreeEnsemble aggregate_function {agg} is unknown")
        init = {SUM: 0.0, AVERAGE: 0.0, MIN: np.inf, MAX: -np.inf}[agg]
        score = np.full((x.shape[0], n_targets), init)
        reached = np.zeros((x.shape[0], n_targets), dtype=bool)
        rows = np.arange(x.shape[0])
        for tree_leaves in leaves:
            t, w = targets[tree_leaves], weights[tree_leaves]
            if agg in (SUM, AVERAGE):
                np.add.at(score, (rows, t), w)
            elif agg == MIN:
                np.minimum.at(score, (rows, t), w)
            else:
                np.maximum.at(score, (rows, t), w)
            reached[rows, t] = True
        score = np.where(reached, score, 0.0)
        if agg == AVERAGE and len(leaves):
            score = score / len(leaves)
        return post_transform(score, a["post_transform"]).astype(x.dtype)

    @staticmethod
    def _leaves(x: np.ndarray, a: dict, root: int) -> np.ndarray:
        """The leaf index that each row of X reaches in the tree at ``root``."""
        true_ids, false_ids = a["nodes_truenodeids"], a["nodes_falsenodeids"]
        true_leaf, false_leaf = a["nodes_trueleafs"], a["nodes_falseleafs"]
        if true_leaf[root] and false_leaf[root] and true_ids[root] == false_ids[root]:
            return np.full(x.shape[0], true_ids[root], dtype=np.int64)
        modes = np.asarray(a["nodes_modes"]).reshape(-1)
        splits = np.asarray(a["nodes_splits"]).reshape(-1).astype(x.dtype)
        features = a["nodes_featureids"]
        missing = a["nodes_missing_value_tracks_true"] or [0] * len(modes)
        sets = _member_sets(modes, a["membership_values"], x.dtype)
        out = np.empty(x.shape[0], dtype=np.int64)
        for r, row in enumerate(x):
            node = root
            while True:
                v = row[features[node]]
                mode = modes[node]
                if np.isnan(v) and missing[node]:
                    go = True
                elif mode == MEMBER:
                    go = v in sets[node]
                else:
                    go = _COMPARE[mode](v, splits[node])
                nxt, leaf = (true_ids[node], true_leaf[node]) if go else (false_ids[node], false_leaf[node])
                if leaf:
                    out[r] = nxt
                    break
                node = nxt
        return out


_COMPARE = {LEQ: lambda v, s: v <= s, LT: lambda v, s: v < s, GTE: lambda v, s: v >= s,
            GT: lambda v, s: v > s, EQ: lambda v, s: v == s, NEQ: lambda v, s: v != s}


def _member_sets(modes: np.ndarray, members, dtype) -> dict[int, set]:
    """The set of each MEMBER node: ``members`` split at nan, in node order."""
    member_nodes = [i for i, m in enumerate(modes) if m == MEMBER]
    if not member_nodes:
        return {}
    if members is None:
        raise GraphError("TreeEnsemble has MEMBER nodes but no 'membership_values'")
    groups: list[set] = [set()]
    for v in np.asarray(members).reshape(-1).astype(dtype).tolist():
        if math.isnan(v):
            groups.append(set())
        else:
            groups[-1].add(v)
    if groups and not groups[-1]:
        groups.pop()
    if len(groups) < len(member_nodes):
        raise GraphError(f"TreeEnsemble has {len(member_nodes)} MEMBER nodes but {len(groups)} sets")
    return dict(zip(member_nodes, groups))


def post_transform(score: np.ndarray, kind: int) -> np.ndarray:
    """NONE, SOFTMAX and SOFTMAX_ZERO (zeros stay zero) over the targets; LOGISTIC and
    PROBIT (the standard normal quantile) elementwise."""
    if kind == NONE:
        return score
    if kind in (SOFTMAX, SOFTMAX_ZERO):
        keep = np.ones_like(score, dtype=bool) if kind == SOFTMAX else score != 0
        shifted = np.where(keep, score, -np.inf)
        top = np.max(shifted, axis=-1, keepdims=True, initial=-np.inf)
        e = np.where(keep, np.exp(shifted - np.where(np.isfinite(top), top, 0)), 0.0)
        total = e.sum(axis=-1, keepdims=True)
        return np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    if kind == LOGISTIC:
        return 1 / (1 + np.exp(-score))
    if kind == PROBIT:
        normal = statistics.NormalDist()
        flat = [normal.inv_cdf(v) if 0 < v < 1 else math.copysign(math.inf, v - 0.5) if v in (0, 1) else math.nan
                for v in score.reshape(-1).tolist()]
        return np.asarray(flat).reshape(score.shape)
    raise GraphError(f"TreeEnsemble post_transform {kind} is unknown")
