"""DepthToSpace and SpaceToDepth on the device, for every movement dtype: each is the op
library's (split shape, permutation, output shape) plan run as one strided copy."""
from __future__ import annotations

from dh_core.ir import type_key
from dh_core.ops import registry

from .movement import DTYPES, Copier, contiguous_strides
from .runtime import Runtime
from .table import OpKernel, rank


def block_rearrange_factory(rt: Runtime, node, types, attrs):
    op = registry.get(node.op)
    copy = Copier(rt, type_key(types[0]))
    blocksize, mode = int(attrs["blocksize"]), attrs["mode"]

    def run(x):
        split, perm, out = op._checked_plan(x.shape, blocksize, mode, node.name)
        strides = contiguous_strides(split)
        y = rt.empty(out, x.dtype)
        copy(y, x, [split[p] for p in perm], [strides[p] for p in perm])
        return y

    return run


def _check(node, types) -> bool:
    return len(types) == 1 and type_key(types[0]) in DTYPES and rank(types[0]) == 4


KERNELS = {op: OpKernel(_check, block_rearrange_factory) for op in ("DepthToSpace", "SpaceToDepth")}
