"""Identifiers that must be unique, never secret: request ids, W3C trace and span ids.

Drawn from a PRNG seeded from the OS, once per process (and again in each forked worker),
not from ``os.urandom`` per id: that is a system call per id on the hot path. OpenTelemetry's
SDK draws its trace and span ids the same way (``random.getrandbits``). Anything secret (the
session id and secret, state, nonce, PKCE verifier, login binding) uses ``secrets``.
"""

from __future__ import annotations

import os
import random

_rng = random.Random(os.urandom(32))  # noqa: S311 (unique ids, not secrets: see above)
os.register_at_fork(after_in_child=lambda: _rng.seed(os.urandom(32)))


def hex_id(nbytes: int) -> str:
    """``nbytes`` random bytes as lower-case hex, never all zeros (W3C Trace Context: an
    all-zero trace or span id is invalid)."""
    value = 0
    while value == 0:
        value = _rng.getrandbits(nbytes * 8)
    return f"{value:0{nbytes * 2}x}"
