"""Samples for the signal ops."""
