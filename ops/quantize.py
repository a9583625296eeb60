"""Quantization ops: QuantizeLinear, DequantizeLinear, integer matmul and convolution."""
