"""Samples for the indexing ops."""
