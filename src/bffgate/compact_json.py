"""Compact JSON bytes for what the gateway stores (session records, sealed token sets, login
records): orjson, about 10x less CPU than the stdlib on the long strings these hold (tokens,
sealed blobs; a login's records and token set are ~2 % of its CPU through ``json.dumps``).

The output is what ``json.dumps(doc, separators=(",", ":"), ensure_ascii=False)`` writes, so
any JSON reader (the stdlib's, an older gateway's) reads it back to the same values. What
orjson refuses (an integer beyond 64 bits, which an IdP's claims may hold) is written by the
stdlib instead, as before; NaN and infinities, which JSON has no way to write, become null.
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def dumps(doc: Any) -> bytes:
    try:
        return orjson.dumps(doc)
    except TypeError:  # orjson.JSONEncodeError: an integer beyond 64 bits, a non-str key
        return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
