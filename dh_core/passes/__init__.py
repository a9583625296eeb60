"""Graph passes: type inference, constant folding, dead-code elimination, decomposition."""
from .dce import eliminate_dead_code
from .decompose import decompose_node
from .fold import fold_constants
from .infer import infer_node, infer_types

__all__ = ["decompose_node", "eliminate_dead_code", "fold_constants", "infer_node", "infer_types"]
