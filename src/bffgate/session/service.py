"""SessionService: login records and sessions over the SessionStore and the cookie codec.

Record layout (the store's payload, JSON): plain fields the gateway reads without the
cookie (sub, IdP sid, visible claims, expiries, logout id) and ``sealed``: the tokens,
AES-GCM-sealed under a key derived from the per-session secret that only the cookie holds.
Login records seal the code_verifier and nonce under the browser's login-binding value,
so a Redis dump yields neither, and a callback from another browser cannot open them.
"""

from __future__ import annotations

import json
import random
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bffgate import audit
from bffgate.audit import AuditEvent
from bffgate.clock import Clock
from bffgate.crypto.cookie_codec import (
    CookieCodec,
    CookieInvalid,
    SessionHandle,
    binding_matches,
)
from bffgate.crypto.sealing import SealBroken, open_sealed, seal
from bffgate.session.model import LoginRecord, SessionData, Tokens, refresh_point
from bffgate.store.base import SessionStore

RECORD_VERSION = 1  # bump with a reader for the old version, so rolling upgrades keep sessions


class LoginRecordRejected(Exception):
    """The callback's state does not lead to a usable login record (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LoadedSession:
    """A session as read for one request: its handle, data and store generation."""

    handle: SessionHandle
    data: SessionData
    generation: int
    idle_expires_at: float

    @property
    def key(self) -> str:
        return self.handle.key


@dataclass(frozen=True)
class NewTokens:
    """What a successful grant returns, neutral of the OIDC layer."""

    access_token: str
    refresh_token: str | None
    id_token: str | None
    expires_at: float | None
    sub: str | None = None  # the subject of a validated ID token in the response, if any


class NoSession(StrEnum):
    """Why a request has no session (the value is the problem's ``reason``)."""

    NO_COOKIE = "no_cookie"
    COOKIE_INVALID = "cookie_invalid"  # bad signature or format: audited as tampering
    SESSION_UNKNOWN = "session_unknown"  # expired, logged out or revoked


class SessionService:
    def __init__(self, store: SessionStore, codec: CookieCodec, clock: Clock, *,
                 idle_timeout: int, absolute_timeout: int, refresh_ahead: int,
                 login_timeout: int) -> None:
        self.store, self.codec, self.clock = store, codec, clock
        self.idle, self.absolute = idle_timeout, absolute_timeout
        self.refresh_ahead, self.login_timeout = refresh_ahead, login_timeout

    # ---- login records -------------------------------------------------------------
    async def save_login(self, state: str, record: LoginRecord, binding: str) -> None:
        secret = json.dumps({"v": record.code_verifier, "n": record.nonce}).encode()
        doc = {
            "sealed": seal(binding.encode(), secret, state.encode()),
            "return_url": record.return_url,
            "created_at": record.created_at,
            "binding": record.binding_hash,
        }
        await self.store.put_login(state, json.dumps(doc).encode(), self.login_timeout)

    async def take_login(self, state: str, binding: str | None) -> LoginRecord:
        """Single use: the record is deleted whether or not the checks pass."""
        raw = await self.store.take_login(state)
        if raw is None:
            raise LoginRecordRejected("state_unknown")
        doc = json.loads(raw)
        if self.clock.now() - float(doc["created_at"]) > self.login_timeout:
            raise LoginRecordRejected("login_expired")
        if not binding_matches(binding, doc["binding"]):
            raise LoginRecordRejected("binding_mismatch")
        try:
            secret = json.loads(open_sealed((binding or "").encode(), doc["sealed"],
                                            state.encode()))
        except SealBroken:
            raise LoginRecordRejected("binding_mismatch") from None
        return LoginRecord(secret["v"], secret["n"], doc["return_url"],
                           float(doc["created_at"]), doc["binding"])

    # ---- sessions ------------------------------------------------------------------
    def _tokens_from(self, new: NewTokens, now: float) -> Tokens:
        jitter = random.uniform(0, min(5.0, self.refresh_ahead * 0.1))  # noqa: S311 - not crypto
        return Tokens(new.access_token, new.refresh_token, new.id_token, new.expires_at,
                      refresh_point(now, new.expires_at, self.refresh_ahead, jitter))

    def _encode(self, handle: SessionHandle, data: SessionData) -> bytes:
        t = data.tokens
        doc = {
            "v": RECORD_VERSION, "sub": data.sub, "sid": data.idp_sid, "claims": data.claims,
            "created": data.created_at, "abs": data.absolute_expires_at,
            "logout": data.logout_id, "exp": t.access_expires_at, "rat": t.refresh_at,
            "sealed": seal(handle.secret, t.to_json(), handle.key.encode()),
        }
        return json.dumps(doc, separators=(",", ":")).encode()

    def _decode(self, handle: SessionHandle, raw: bytes) -> SessionData:
        doc: dict[str, Any] = json.loads(raw)
        if doc.get("v", RECORD_VERSION) != RECORD_VERSION:
            raise ValueError("unknown session record version")
        tokens = Tokens.from_json(open_sealed(handle.secret, doc["sealed"], handle.key.encode()),
                                  doc.get("exp"), doc.get("rat"))
        return SessionData(doc["sub"], doc.get("sid"), doc.get("claims", {}),
                           float(doc["created"]), float(doc["abs"]), doc["logout"], tokens)

    async def create(self, new: NewTokens, *, sub: str, idp_sid: str | None,
                     claims: dict[str, Any]) -> tuple[str, LoadedSession]:
        """A brand-new session (new random id: fixation-proof). Returns the cookie value."""
        now = self.clock.now()
        handle = SessionHandle.new()
        data = SessionData(sub, idp_sid, claims, now, now + self.absolute,
                           secrets.token_urlsafe(16), self._tokens_from(new, now))
        await self.store.create_session(
            handle.key, self._encode(handle, data), now_ms=int(now * 1000),
            idle_ms=self.idle * 1000, absolute_expiry_ms=int(data.absolute_expires_at * 1000),
            sub=sub, idp_sid=idp_sid)
        loaded = LoadedSession(handle, data, 1, min(now + self.idle, data.absolute_expires_at))
        return self.codec.encode(handle), loaded

    def decode_cookie(self, value: str | None) -> SessionHandle | None:
        if not value:
            return None
        try:
            return self.codec.decode(value)
        except CookieInvalid:
            return None

    async def from_cookie(self, value: str | None) -> LoadedSession | NoSession:
        """The session a request's cookie names (one store round trip), or why there is none.

        ``value`` is the single session-cookie value the edge found (None: no cookie); a
        cookie sent twice is the edge's to refuse before asking. A cookie that fails its
        signature or format check is audited here (``request.rejected``, ``cookie_invalid``)."""
        if not value:
            return NoSession.NO_COOKIE
        handle = self.decode_cookie(value)
        if handle is None:
            audit.emit(AuditEvent.REQUEST_REJECTED, level="warning",
                       reason=NoSession.COOKIE_INVALID.value, status=401)
            return NoSession.COOKIE_INVALID
        session = await self.load(handle)
        return NoSession.SESSION_UNKNOWN if session is None else session

    async def load(self, handle: SessionHandle) -> LoadedSession | None:
        """One store round trip: read and slide the idle TTL. None when gone or unopenable."""
        now = self.clock.now()
        stored = await self.store.load_session(handle.key, now_ms=int(now * 1000),
                                               idle_ms=self.idle * 1000)
        if stored is None:
            return None
        try:
            data = self._decode(handle, stored.data)
        except (SealBroken, ValueError, KeyError):
            return None
        if now >= data.absolute_expires_at:
            return None
        return LoadedSession(handle, data, stored.generation,
                             min(now + self.idle, data.absolute_expires_at))

    async def replace_tokens(self, current: LoadedSession, new: NewTokens) -> LoadedSession | None:
        """Save a rotated token set with compare-and-set; None if someone else wrote first.

        A refresh response without a refresh token keeps the old one (RFC 6749 6), and
        without an ID token keeps the old one (for id_token_hint at logout)."""
        now = self.clock.now()
        merged = NewTokens(new.access_token,
                           new.refresh_token or current.data.tokens.refresh_token,
                           new.id_token or current.data.tokens.id_token, new.expires_at)
        data = current.data.with_tokens(self._tokens_from(merged, now))
        ok = await self.store.replace_session(
            current.key, self._encode(current.handle, data),
            expected_generation=current.generation, now_ms=int(now * 1000),
            idle_ms=self.idle * 1000)
        if not ok:
            return None
        return LoadedSession(current.handle, data, current.generation + 1,
                             min(now + self.idle, data.absolute_expires_at))

    async def destroy(self, session: LoadedSession) -> bool:
        return await self.store.delete_session(session.key, sub=session.data.sub,
                                               idp_sid=session.data.idp_sid)


async def revoke_sessions(store: SessionStore, *, key: str | None = None, sub: str | None = None,
                          reason: str) -> int:
    """End one session by store key, or every session of ``sub``; audit each one ended
    (``session.revoked``). The admin endpoint and the CLI both revoke through here."""
    keys = [key] if key else (await store.keys_for_sub(sub) if sub else [])
    ended = 0
    for k in keys:
        if await store.delete_session(k, sub=sub):
            ended += 1
            audit.emit(AuditEvent.SESSION_REVOKED, reason=reason, session=k[:16], sub=sub)
    return ended
