"""dh: deep-learning models on any hardware."""
from .builder import GraphBuilder
from .errors import DHError
from .ir import Graph, Node, TensorType, Value
from .session import Session

__version__ = "0.1.0"
__all__ = ["DHError", "Graph", "GraphBuilder", "Node", "Session", "TensorType", "Value", "__version__"]
