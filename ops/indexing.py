"""Indexing ops: gathers, scatters, selections by condition or value."""
