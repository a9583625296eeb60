"""The conformance suite a new device runs to prove itself (installed as ``dh_core.conformance``)."""
