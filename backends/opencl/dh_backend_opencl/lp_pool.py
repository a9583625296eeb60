"""LpPool in float32 over 1 to 3 spatial axes (cl/lp_pool.cl), one work-item per output
element, with the window geometry of the other pooling ops (:mod:`.pool`)."""
from __future__ import annotations

import math

import numpy as np
from dh_core.ir import type_key

from .conv import window_source
from .pool import _geometry_cache as geometry_cache, _window_check as window_check
from .runtime import Runtime
from .table import OpKernel


def lp_pool_factory(rt: Runtime, attrs: dict):
    kernel = rt.kernel(window_source("lp_pool.cl"), "lp_pool")
    geometry = geometry_cache(rt, attrs)
    p_norm = np.int32(attrs["p"])

    def run(x):
        out, meta = geometry(x.shape)
        y = rt.empty(out, np.float32)
        if y.size:
            kernel(rt.queue, (math.prod(out[2:]), out[0] * out[1]), None, y.data, p_norm,
                   x.data if x.size else y.data, meta.data)
        return y

    return run


def _check(node, types) -> bool:
    """Pooling's window check; p from 1 up (p = 0 has no norm)."""
    return window_check(node, types) and type_key(types[0]) == "float32" and int(node.attrs.get("p", 2)) >= 1


KERNELS = {"LpPool": OpKernel(_check, lambda rt, node, types, attrs: lp_pool_factory(rt, attrs))}
