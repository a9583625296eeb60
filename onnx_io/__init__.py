"""ONNX in and out: ``import_model`` reads a model into a Graph, ``export_model`` writes one."""
from .exporter import export_model
from .importer import import_model

__all__ = ["export_model", "import_model"]
