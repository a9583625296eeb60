"""The OpenCL backend's conformance manifest: tolerance overrides and expected failures
(same sections as the CPU backend's manifest)."""

MANIFEST = {
    'tolerances': {},
    'xfail': {},
    'onnx_xfail': {},
    'onnx_random': {},
}
