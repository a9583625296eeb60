"""LpPool in float32 over 1 to 3 spatial axes (cl/lp_pool.cl), one work-item per output
element, with the window geometry of the other pooling ops (:mod:`.pool`)."""
from __future__ import annotations

import numpy as np

from .pool import _window_check as window_check, window_pool_factory
from .runtime import Runtime
from .table import OpKernel


def lp_pool_factory(rt: Runtime, attrs: dict):
    return window_pool_factory(rt, attrs, "lp_pool.cl", "lp_pool", np.int32(attrs["p"]))


def _check(node, types) -> bool:
    """Pooling's window check in float32; p from 1 up (p = 0 has no norm)."""
    return window_check(node, types, dtypes=("float32",)) and int(node.attrs.get("p", 2)) >= 1


KERNELS = {"LpPool": OpKernel(_check, lambda rt, node, types, attrs: lp_pool_factory(rt, attrs))}
