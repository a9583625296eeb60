"""dh OpenCL backend: OpenCL C kernels compiled at run time through pyopencl."""
