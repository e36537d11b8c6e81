"""The session record's bytes in the store, and back.

Layout (JSON): plain fields the gateway reads without the cookie (sub, IdP sid, visible
claims, expiries, logout id) and ``sealed``: the tokens, AES-GCM-sealed under a key derived
from the per-session secret that only the cookie holds, so a store dump yields no token.
``xt`` (optional, absent in older records): the route tokens exchanged for the access token
(RFC 8693), sealed the same way as a blob of their own.
"""

from __future__ import annotations

import json
from typing import Any

from bffgate.crypto.cookie_codec import SessionHandle
from bffgate.crypto.sealing import SealBroken, open_sealed, seal
from bffgate.session.model import ExchangedToken, SessionData, Tokens

RECORD_VERSION = 1  # bump with a reader for the old version, so rolling upgrades keep sessions
_XT_AAD = b"/xt"  # appended to the store key: the exchanged-token blob opens only as itself


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
    if data.exchanged:
        doc["xt"] = seal(handle.secret, _exchanged_json(data), handle.key.encode() + _XT_AAD)
    return json.dumps(doc, separators=(",", ":")).encode()


def _exchanged_json(data: SessionData) -> bytes:
    return json.dumps({k: [x.access_token, x.expires_at, x.renew_at, x.subject]
                       for k, x in data.exchanged.items()}, separators=(",", ":")).encode()


def _exchanged(handle: SessionHandle, blob: object) -> dict[str, ExchangedToken]:
    if blob is None:
        return {}
    if not isinstance(blob, str):
        raise ValueError("xt")
    doc = json.loads(open_sealed(handle.secret, blob, handle.key.encode() + _XT_AAD))
    return {str(k): ExchangedToken(str(at), None if exp is None else float(exp), float(renew),
                                   str(subject))
            for k, (at, exp, renew, subject) in doc.items()}


def decode_session(handle: SessionHandle, raw: bytes) -> SessionData:
    try:
        doc: dict[str, Any] = json.loads(raw)
        if doc.get("v", RECORD_VERSION) != RECORD_VERSION:
            raise RecordUnreadable("unknown session record version")
        tokens = Tokens.from_json(open_sealed(handle.secret, doc["sealed"], handle.key.encode()),
                                  doc.get("exp"), doc.get("rat"))
        return SessionData(doc["sub"], doc.get("sid"), doc.get("claims", {}),
                           float(doc["created"]), float(doc["abs"]), doc["logout"], tokens,
                           exchanged=_exchanged(handle, doc.get("xt")))
    except (SealBroken, ValueError, KeyError, TypeError) as exc:
        raise RecordUnreadable(type(exc).__name__) from None
