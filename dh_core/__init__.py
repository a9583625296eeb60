"""dh: deep-learning models on any hardware."""
from .errors import DHError
from .ir import Graph, Node, TensorType, Value

__version__ = "0.1.0"
__all__ = ["DHError", "Graph", "Node", "TensorType", "Value", "__version__"]
