"""Session domain values and their pure rules (no I/O): tokens, session, login record."""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from bffgate import compact_json
from bffgate.crypto.cookie_codec import SessionHandle


@dataclass(frozen=True, repr=False)
class Tokens:
    """The token set of one session. Never rendered: repr shows presence only."""

    access_token: str
    refresh_token: str | None
    id_token: str | None
    access_expires_at: float | None
    refresh_at: float | None = None  # when to refresh: expiry - refresh_ahead - jitter
    # DPoP (oidc.dpop): the session's private key (serialised; sealed with the tokens, never
    # elsewhere) and the scheme the IdP issued the access token for ("DPoP" or "Bearer").
    dpop_key: str | None = None
    token_type: str = "Bearer"

    def __repr__(self) -> str:
        return (f"Tokens(access_token=True, refresh_token={self.refresh_token is not None}, "
                f"id_token={self.id_token is not None}, access_expires_at={self.access_expires_at})")

    def to_json(self) -> bytes:
        doc = {"at": self.access_token, "rt": self.refresh_token, "it": self.id_token}
        if self.dpop_key is not None:  # absent otherwise: records stay as they were
            doc |= {"dk": self.dpop_key, "tt": self.token_type}
        return compact_json.dumps(doc)

    @classmethod
    def from_json(cls, raw: bytes, access_expires_at: float | None,
                  refresh_at: float | None) -> Tokens:
        d = json.loads(raw)
        return cls(d["at"], d.get("rt"), d.get("it"), access_expires_at, refresh_at,
                   d.get("dk"), d.get("tt", "Bearer"))

    def access_token_valid(self, now: float) -> bool:
        return self.access_expires_at is None or now < self.access_expires_at

    def refresh_token_due(self, now: float) -> str | None:
        """The refresh token once the refresh point is reached; None before, or without one."""
        if self.refresh_token is None or self.refresh_at is None or now < self.refresh_at:
            return None
        return self.refresh_token


@dataclass(frozen=True)
class SessionData:
    """What one session record holds; ``claims`` are the ones the SPA may see."""

    sub: str
    idp_sid: str | None
    claims: dict[str, Any]
    created_at: float
    absolute_expires_at: float
    logout_id: str
    tokens: Tokens = field(repr=True)
    # Tokens exchanged for the access token (RFC 8693), by route key (bffgate.tokens.exchange)
    exchanged: Mapping[str, ExchangedToken] = field(default_factory=dict)
    # What the admin API shows (session/inventory.py); none of it is secret or derived from
    # the cookie. admin_id: a random handle of its own (never the store key or a hash of it).
    admin_id: str = field(default_factory=lambda: new_admin_id())
    origin: SessionOrigin | None = None
    refreshed_at: float | None = None  # when the tokens were last replaced by a refresh
    refresh_count: int = 0

    def with_tokens(self, tokens: Tokens, now: float | None = None) -> SessionData:
        """The session with a new token set (a refresh at ``now``, counted); what was
        exchanged for the old access token goes with it (the next exchange uses the new one)."""
        return replace(self, tokens=tokens, exchanged={},
                       refreshed_at=self.refreshed_at if now is None else now,
                       refresh_count=self.refresh_count + 1)

    def with_exchanged(self, key: str, token: ExchangedToken) -> SessionData:
        return replace(self, exchanged={**self.exchanged, key: token})


USER_AGENT_MAX = 256  # characters of the login's User-Agent kept in the record


@dataclass(frozen=True)
class SessionOrigin:
    """Where a session was created: the login callback's client address (after the trusted
    proxies) and User-Agent (truncated). Shown to administrators, never used to decide."""

    client_ip: str | None
    user_agent: str | None

    @classmethod
    def of(cls, client_ip: object, user_agent: object) -> SessionOrigin:
        ip = str(client_ip)[:64] if client_ip else None
        ua = str(user_agent)[:USER_AGENT_MAX] if user_agent else None
        return cls(ip, ua)


def new_admin_id() -> str:
    """A random admin handle (128 bits, base64url): unrelated to the session id, the
    per-session secret and the store key. Never starting with "-" (1 in 64 would): a shell
    command takes such a word for an option (``bffgate sessions show -8-XW...`` failed)."""
    while (value := secrets.token_urlsafe(16)).startswith("-"):
        pass
    return value


@dataclass(frozen=True, repr=False)
class ExchangedToken:
    """A token exchanged for the session's access token, cached for one route until
    ``renew_at``. ``subject`` is a digest of the access token it was exchanged for, so a
    cached one is never used with another. repr shows presence only."""

    access_token: str
    expires_at: float | None
    renew_at: float
    subject: str

    def __repr__(self) -> str:
        return f"ExchangedToken(access_token=True, expires_at={self.expires_at})"

    def usable(self, subject: str, now: float) -> bool:
        return self.subject == subject and now < self.renew_at


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


class NoSession(StrEnum):
    """Why a request has no session (the value is the problem's ``reason``)."""

    NO_COOKIE = "no_cookie"
    COOKIE_INVALID = "cookie_invalid"  # bad signature or format: audited as tampering
    SESSION_UNKNOWN = "session_unknown"  # expired, logged out or revoked


@dataclass(frozen=True, repr=False)
class NewTokens:
    """What a successful grant returns, neutral of the OIDC layer. repr shows presence only."""

    access_token: str
    refresh_token: str | None
    id_token: str | None
    expires_at: float | None
    dpop_key: str | None = None  # the session's DPoP key (serialised) the grant was proved with
    token_type: str = "Bearer"

    def __repr__(self) -> str:
        return (f"NewTokens(access_token=True, refresh_token={self.refresh_token is not None}, "
                f"id_token={self.id_token is not None}, expires_at={self.expires_at})")


@dataclass(frozen=True, repr=False)
class LoginRecord:
    """The server side of one login in flight, keyed by ``state``."""

    code_verifier: str
    nonce: str
    return_url: str
    created_at: float
    binding_hash: str

    def __repr__(self) -> str:
        return f"LoginRecord(return_url={self.return_url!r}, created_at={self.created_at})"


# Claims the SPA may read from /bff/user. Anything token-like is never copied.
VISIBLE_CLAIMS = ("sub", "name", "given_name", "family_name", "preferred_username", "email",
                  "email_verified", "picture", "locale", "zoneinfo", "updated_at", "auth_time",
                  "acr", "amr", "iss")


def visible_claims(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: claims[k] for k in VISIBLE_CLAIMS if k in claims}


def refresh_point(issued_at: float, expires_at: float | None, refresh_ahead: float,
                  jitter: float) -> float | None:
    """When to refresh: ``refresh_ahead`` (+ jitter) before expiry, but never before half the
    token's remaining life is used (a 10 s token with refresh_ahead 60 is refreshed at the
    half-way point, not on every request)."""
    if expires_at is None:
        return None
    halfway = issued_at + (expires_at - issued_at) / 2
    return max(halfway, expires_at - refresh_ahead - jitter)
