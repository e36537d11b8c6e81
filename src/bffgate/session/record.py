"""The session record's bytes in the store, and back.

Layout (JSON): plain fields the gateway reads without the cookie (sub, IdP sid, visible
claims, expiries, logout id) and ``sealed``: the tokens, AES-GCM-sealed under a key derived
from the per-session secret that only the cookie holds, so a store dump yields no token.
``xt`` (optional, absent in older records): the route tokens exchanged for the access token
(RFC 8693), sealed the same way as a blob of their own.

Plain, for the admin API (all optional: records written before them still load): ``aid``
the admin handle (absent: derived from the logout id, ``legacy_admin_id``), ``ip`` and
``ua`` the login callback's client address and User-Agent, ``rfa``/``rfn`` when the tokens
were last refreshed and how many times. Readers ignore fields they don't know, so an older
gateway reads these records too (the version stays 1 in both directions of a rolling
upgrade).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from bffgate import compact_json
from bffgate.crypto.cookie_codec import SessionHandle
from bffgate.crypto.sealing import SealBroken, open_sealed, seal
from bffgate.session.model import ExchangedToken, SessionData, SessionOrigin, Tokens

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
    doc |= _admin_fields(data)
    if data.exchanged:
        doc["xt"] = seal(handle.secret, _exchanged_json(data), handle.key.encode() + _XT_AAD)
    return compact_json.dumps(doc)


def _admin_fields(data: SessionData) -> dict[str, Any]:
    doc: dict[str, Any] = {"aid": data.admin_id}
    if data.origin is not None:
        doc |= {"ip": data.origin.client_ip, "ua": data.origin.user_agent}
    if data.refresh_count:
        doc |= {"rfa": data.refreshed_at, "rfn": data.refresh_count}
    return doc


def legacy_admin_id(logout_id: str) -> str:
    """The admin handle of a record written before ``aid`` existed: a digest of its random
    logout id (22 characters like a new one; unrelated to the cookie and the store key)."""
    digest = hashlib.sha256(b"bffgate.admin-id:" + logout_id.encode()).hexdigest()
    return digest[:22]


@dataclass(frozen=True)
class RecordFacts:
    """A record's plain fields: what the admin API and the per-user limit read without the
    cookie (nothing sealed is opened)."""

    admin_id: str
    sub: str
    idp_sid: str | None
    created_at: float
    absolute_expires_at: float
    origin: SessionOrigin | None
    refreshed_at: float | None
    refresh_count: int


def _plain(doc: dict[str, Any]) -> dict[str, Any]:
    """The plain admin fields of a record document, for SessionData and RecordFacts."""
    origin = (SessionOrigin.of(doc.get("ip"), doc.get("ua"))
              if "ip" in doc or "ua" in doc else None)
    rfa = doc.get("rfa")
    return {"admin_id": str(doc.get("aid") or legacy_admin_id(str(doc["logout"]))),
            "origin": origin, "refreshed_at": None if rfa is None else float(rfa),
            "refresh_count": int(doc.get("rfn", 0))}


def read_facts(raw: bytes) -> RecordFacts:
    """The plain fields of a stored record; RecordUnreadable if it is not one."""
    try:
        doc: dict[str, Any] = json.loads(raw)
        if doc.get("v", RECORD_VERSION) != RECORD_VERSION:
            raise RecordUnreadable("unknown session record version")
        sid = doc.get("sid")
        return RecordFacts(sub=str(doc["sub"]), idp_sid=None if sid is None else str(sid),
                           created_at=float(doc["created"]),
                           absolute_expires_at=float(doc["abs"]), **_plain(doc))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise RecordUnreadable(type(exc).__name__) from None


def _exchanged_json(data: SessionData) -> bytes:
    return compact_json.dumps({k: [x.access_token, x.expires_at, x.renew_at, x.subject]
                               for k, x in data.exchanged.items()})


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
                           exchanged=_exchanged(handle, doc.get("xt")), **_plain(doc))
    except (SealBroken, ValueError, KeyError, TypeError) as exc:
        raise RecordUnreadable(type(exc).__name__) from None
