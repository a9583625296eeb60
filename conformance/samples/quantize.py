"""Samples for the quantize ops."""
