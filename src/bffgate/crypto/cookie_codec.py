"""The session cookie value: ``v1.`` + signed (session id, per-session secret).

The id locates the session (Redis key = SHA-256 of it); the secret derives the key that
seals the tokens. Neither is ever stored in clear. Signing uses itsdangerous with a list
of keys, oldest to newest: the newest secret key signs, all secret keys verify, and so do
the verify-only keys, which never sign. A new key is first added as verify-only on every
replica, then promoted, so no replica ever meets a cookie signed with a key it does not
know (README "Operations"). The salt names the purpose so a signature made for anything
else never verifies here.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, Signer

VERSION = "v1"
SALT = "bffgate.session-cookie.v1"
_ID_BYTES = 32
_B64_LEN = 43  # unpadded base64url of 32 bytes
# id . secret . HMAC-SHA256 signature, each exactly 43 base64url characters. Checked before
# verifying: base64 decoding is lenient ('+' for '-', spare bits in the last character), so
# without this several different strings would verify as the same cookie.
_BODY = re.compile(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}")
# Cookie values verified lately, by exact value: a hot session's cookie is verified once,
# not on every call (the value holds no time: it verifies the same until the keys change,
# and the keys are fixed for the codec's life). Oldest out first; ~0.5 KB each.
VERIFIED_MAX = 4096


class CookieInvalid(ValueError):
    """The cookie value is malformed, of an unknown version, or its signature fails."""


@dataclass(frozen=True, repr=False)
class SessionHandle:
    """What the cookie carries: the session id and the per-session sealing secret."""

    session_id: bytes
    secret: bytes

    @classmethod
    def new(cls) -> SessionHandle:
        return cls(secrets.token_bytes(_ID_BYTES), secrets.token_bytes(_ID_BYTES))

    @functools.cached_property
    def key(self) -> str:
        """The store key part: hex SHA-256 of the session id."""
        return hashlib.sha256(self.session_id).hexdigest()

    @property
    def short(self) -> str:
        """A short, non-reversible label for logs."""
        return self.key[:16]

    def __repr__(self) -> str:
        return f"SessionHandle(key={self.short}…)"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if len(text) != _B64_LEN:
        raise CookieInvalid("bad length")
    try:
        return base64.urlsafe_b64decode(text + "=")
    except (ValueError, TypeError) as exc:
        raise CookieInvalid("bad encoding") from exc


def _canonical(text: str) -> bool:
    """True when ``text`` is the one base64url spelling of its bytes (no spare bits set)."""
    return _b64(base64.urlsafe_b64decode(text + "=")) == text


class CookieCodec:
    """Encode and verify session cookie values with rotating keys: ``secret_keys`` oldest to
    newest (the last signs, all verify) and ``verify_keys`` (accepted, never used to sign)."""

    def __init__(self, secret_keys: list[str], verify_keys: list[str] | None = None) -> None:
        if not secret_keys:
            raise ValueError("at least one secret key is required")
        # itsdangerous signs with the last key of the list and verifies with any of them:
        # verify-only keys go first, so they can never be the one that signs.
        keys = [*(verify_keys or []), *secret_keys]
        # The keys derived once (itsdangerous's default derivation, "django-concat"), then
        # used as they are: the same signatures, without a key derivation per request.
        derive = Signer(keys, salt=SALT, digest_method=hashlib.sha256).derive_key
        self._signer = Signer([derive(k) for k in keys], salt=SALT,
                              digest_method=hashlib.sha256, key_derivation="none")
        self._verified: dict[str, SessionHandle] = {}

    def encode(self, handle: SessionHandle) -> str:
        payload = f"{_b64(handle.session_id)}.{_b64(handle.secret)}"
        return f"{VERSION}.{self._signer.sign(payload).decode('ascii')}"

    def decode(self, value: str) -> SessionHandle:
        verified = self._verified.get(value)
        if verified is not None:
            return verified
        handle = self._verify(value)
        if len(self._verified) >= VERIFIED_MAX:
            del self._verified[next(iter(self._verified))]
        self._verified[value] = handle
        return handle

    def _verify(self, value: str) -> SessionHandle:
        if len(value) > 512 or not value.isascii():
            raise CookieInvalid("bad length")
        version, sep, rest = value.partition(".")
        if not sep or version != VERSION:
            raise CookieInvalid("unknown version")
        if not _BODY.fullmatch(rest) or not _canonical(rest[-_B64_LEN:]):
            raise CookieInvalid("malformed")
        try:
            payload = self._signer.unsign(rest).decode("ascii")
        except BadSignature as exc:
            raise CookieInvalid("bad signature") from exc
        sid, sep, secret = payload.partition(".")
        if not sep:
            raise CookieInvalid("malformed")
        return SessionHandle(_unb64(sid), _unb64(secret))


def new_login_binding() -> str:
    """A random value for the login-binding cookie (the record keeps only its hash)."""
    return secrets.token_urlsafe(32)


def binding_hash(value: str) -> str:
    return hashlib.sha256(("bffgate.login-binding:" + value).encode()).hexdigest()


def binding_matches(value: str | None, expected_hash: str) -> bool:
    if not value or len(value) > 128:
        return False
    return hmac.compare_digest(binding_hash(value), expected_hash)
