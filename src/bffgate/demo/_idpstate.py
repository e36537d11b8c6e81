"""In-memory state of the development identity provider: logins, codes, grants, tokens."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Login:
    """A user signed in at the identity provider (one browser's IdP session)."""

    sid: str
    username: str
    auth_time: int


@dataclass(frozen=True)
class AuthCode:
    """What an authorization code stands for until it is redeemed."""

    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: str
    login: Login
    expires_at: float


@dataclass
class Grant:
    """One authorization: the family of every token issued from a single code."""

    grant_id: str
    client_id: str
    scope: str
    login: Login
    revoked: bool = False


@dataclass
class RefreshRecord:
    """One refresh token of a grant; usable once (rotation)."""

    grant_id: str
    expires_at: float
    used: bool = False


@dataclass
class _SpentCode:
    grant_id: str | None
    expires_at: float


@dataclass
class IdpState:
    """Every piece of provider state, in dicts; time comes from ``now``."""

    now: Callable[[], float]
    logins: dict[str, Login] = field(default_factory=dict)
    codes: dict[str, AuthCode] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshRecord] = field(default_factory=dict)
    access_tokens: dict[str, str] = field(default_factory=dict)
    revoked_access: set[str] = field(default_factory=set)
    _spent_codes: dict[str, _SpentCode] = field(default_factory=dict)

    def sign_in(self, username: str, sid: str | None) -> Login:
        """Return the browser's login, keeping its sid when the same user signs in again."""
        current = self.logins.get(sid) if sid else None
        if current is not None and current.username == username:
            return current
        login = Login(secrets.token_urlsafe(16), username, int(self.now()))
        self.logins[login.sid] = login
        return login

    def sign_out(self, sid: str) -> None:
        """End one IdP login session."""
        self.logins.pop(sid, None)

    def issue_code(self, code: AuthCode) -> str:
        """Store a new single-use authorization code and return its value."""
        self._prune_codes()
        value = secrets.token_urlsafe(32)
        self.codes[value] = code
        return value

    def take_code(self, value: str) -> AuthCode | None:
        """Redeem a code once; a replayed code revokes the grant it produced (RFC 6749 4.1.2)."""
        self._prune_codes()
        code = self.codes.pop(value, None)
        if code is None:
            spent = self._spent_codes.get(value)
            if spent is not None and spent.grant_id is not None:
                self.revoke_grant(spent.grant_id)
            return None
        self._spent_codes[value] = _SpentCode(None, code.expires_at)
        if code.expires_at <= self.now():
            return None
        return code

    def new_grant(self, code_value: str, code: AuthCode) -> Grant:
        """Start a token family for a redeemed code."""
        grant = Grant(secrets.token_urlsafe(16), code.client_id, code.scope, code.login)
        self.grants[grant.grant_id] = grant
        spent = self._spent_codes.get(code_value)
        if spent is not None:
            spent.grant_id = grant.grant_id
        return grant

    def issue_refresh(self, grant: Grant, expires_at: float) -> str:
        """Add a fresh opaque refresh token to a grant."""
        value = secrets.token_urlsafe(32)
        self.refresh_tokens[value] = RefreshRecord(grant.grant_id, expires_at)
        return value

    def rotate_refresh(self, value: str, client_id: str) -> Grant | None:
        """Spend a refresh token; presenting a spent one revokes its whole grant."""
        record = self.refresh_tokens.get(value)
        if record is None:
            return None
        grant = self.grants.get(record.grant_id)
        if grant is None or grant.revoked or grant.client_id != client_id:
            return None
        if record.used:
            self.revoke_grant(grant.grant_id)
            return None
        if record.expires_at <= self.now():
            return None
        record.used = True
        return grant

    def active_refresh(self, value: str) -> tuple[RefreshRecord, Grant] | None:
        """The record and grant of a refresh token that could still be used."""
        record = self.refresh_tokens.get(value)
        if record is None or record.used or record.expires_at <= self.now():
            return None
        grant = self.grants.get(record.grant_id)
        if grant is None or grant.revoked:
            return None
        return record, grant

    def refresh_grant(self, value: str) -> Grant | None:
        """The grant a refresh token (spent or not) belongs to."""
        record = self.refresh_tokens.get(value)
        return self.grants.get(record.grant_id) if record is not None else None

    def register_access(self, jti: str, grant: Grant) -> None:
        """Remember which grant an access token belongs to."""
        self.access_tokens[jti] = grant.grant_id

    def active_access(self, jti: str) -> Grant | None:
        """The grant of an access token that was neither revoked nor orphaned."""
        grant_id = self.access_tokens.get(jti)
        if grant_id is None or jti in self.revoked_access:
            return None
        grant = self.grants.get(grant_id)
        if grant is None or grant.revoked:
            return None
        return grant

    def revoke_access(self, jti: str) -> None:
        """Revoke one access token."""
        self.revoked_access.add(jti)

    def revoke_grant(self, grant_id: str) -> None:
        """Revoke a grant: every access and refresh token of the family stops working."""
        grant = self.grants.get(grant_id)
        if grant is not None:
            grant.revoked = True

    def _prune_codes(self) -> None:
        now = self.now()
        for value in [v for v, c in self.codes.items() if c.expires_at <= now]:
            del self.codes[value]
        for value in [v for v, s in self._spent_codes.items() if s.expires_at <= now]:
            del self._spent_codes[value]
