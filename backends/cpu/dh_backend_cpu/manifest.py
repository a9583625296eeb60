"""The CPU backend's conformance manifest: tolerance overrides and expected failures."""

MANIFEST = {
    "tolerances": {},
    "xfail": {},
}
