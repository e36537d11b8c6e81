"""The session record's bytes in the store, and back.

Layout (JSON): plain fields the gateway reads without the cookie (sub, IdP sid, visible
claims, expiries, logout id) and ``sealed``: the tokens, AES-GCM-sealed under a key derived
from the per-session secret that only the cookie holds, so a store dump yields no token.
"""

from __future__ import annotations

import json
from typing import Any

from bffgate.crypto.cookie_codec import SessionHandle
from bffgate.crypto.sealing import SealBroken, open_sealed, seal
from bffgate.session.model import SessionData, Tokens

RECORD_VERSION = 1  # bump with a reader for the old version, so rolling upgrades keep sessions


class RecordUnreadable(Exception):
    """The record can't be opened with this handle, or is of an unknown version."""


def encode_session(handle: SessionHandle, data: SessionData) -> bytes:
    t = data.tokens
    doc = {
        "v": RECORD_VERSION, "sub": data.sub, "sid": data.idp_sid, "claims": data.claims,
        "created": data.created_at, "abs": data.absolute_expires_at,
        "logout": data.logout_id, "exp": t.access_expires_at, "rat": t.refresh_at,
        "sealed": seal(handle.secret, t.to_json(), handle.key.encode()),
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def decode_session(handle: SessionHandle, raw: bytes) -> SessionData:
    try:
        doc: dict[str, Any] = json.loads(raw)
        if doc.get("v", RECORD_VERSION) != RECORD_VERSION:
            raise RecordUnreadable("unknown session record version")
        tokens = Tokens.from_json(open_sealed(handle.secret, doc["sealed"], handle.key.encode()),
                                  doc.get("exp"), doc.get("rat"))
        return SessionData(doc["sub"], doc.get("sid"), doc.get("claims", {}),
                           float(doc["created"]), float(doc["abs"]), doc["logout"], tokens)
    except (SealBroken, ValueError, KeyError) as exc:
        raise RecordUnreadable(type(exc).__name__) from None
