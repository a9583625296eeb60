"""Graph passes: type inference, constant folding, dead-code elimination, decomposition,
Identity removal, BatchNormalization folding, and ``optimize`` that chains them."""
from .batchnorm import fold_batch_norm
from .dce import eliminate_dead_code
from .decompose import decompose_node
from .fold import fold_constants
from .identity import remove_identities
from .infer import infer_node, infer_types
from .optimize import optimize

__all__ = ["decompose_node", "eliminate_dead_code", "fold_batch_norm", "fold_constants", "infer_node",
           "infer_types", "optimize", "remove_identities"]
