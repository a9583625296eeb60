"""Signal ops: Fourier transforms and windows."""
