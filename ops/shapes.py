"""Shape arithmetic shared by the ops' ``infer`` methods; dims may be symbols or None."""
from __future__ import annotations

from collections.abc import Sequence

from dh_core.errors import ShapeError
from dh_core.ir import Dim

Shape = tuple[Dim, ...]


def broadcast(*shapes: Shape | None, node: str | None = None) -> Shape | None:
    """Numpy broadcasting of shapes with symbolic dims; None when a rank is unknown."""
    if any(s is None for s in shapes):
        return None
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for axis in range(rank):
        dims = [s[len(s) - rank + axis] for s in shapes if len(s) - rank + axis >= 0]
        known = {d for d in dims if d != 1}
        if not known:
            out.append(1)
        elif len(known) == 1:
            out.append(known.pop())
        elif None in known or any(isinstance(d, str) for d in known):
            ints = {d for d in known if isinstance(d, int)}
            out.append(ints.pop() if len(ints) == 1 else None)
        else:
            raise ShapeError(f"shapes {[list(s) for s in shapes]} do not broadcast", node)
    return tuple(out)


def normalize_axis(axis: int, rank: int, node: str | None = None) -> int:
    """Map a possibly negative axis into [0, rank)."""
    if not -rank <= axis < max(rank, 1):
        raise ShapeError(f"axis {axis} is out of range for rank {rank}", node)
    return axis % rank if rank else 0


def normalize_axes(axes: Sequence[int], rank: int, node: str | None = None) -> list[int]:
    return [normalize_axis(int(a), rank, node) for a in axes]


def is_static(shape: Shape | None) -> bool:
    return shape is not None and all(isinstance(d, int) for d in shape)


def mul_dims(dims: Sequence[Dim]) -> Dim:
    """Product of dims; None unless every dim is a known integer."""
    total = 1
    for d in dims:
        if not isinstance(d, int):
            return None
        total *= d
    return total
