"""dh CPU backend (numpy/BLAS)."""
