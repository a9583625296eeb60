"""Samples for the vision ops."""
