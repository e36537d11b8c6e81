"""DPoP (RFC 9449): the per-session key pair, its proofs, and the servers' nonces.

One ES256 (P-256) key pair per session. Its private part is serialised (a private JWK as
JSON) only to be sealed with the session's tokens; ``repr`` never shows it. A proof is a
fresh JWT per request (typ ``dpop+jwt``, the public key in the ``jwk`` header) naming the
method and URL (``htm``, ``htu`` without query or fragment), with a random ``jti``, ``iat``,
``ath`` (hash of the access token) on resource requests, and the server's nonce once asked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit, urlunsplit

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey

from bffgate.clock import Clock

ALGORITHM = "ES256"
PROOF_TYPE = "dpop+jwt"
USE_DPOP_NONCE = "use_dpop_nonce"  # the error code of a server that wants a nonce
NONCE_HEADER = "DPoP-Nonce"
_MAX_NONCE = 512  # characters; a longer "nonce" is not one we echo back
_MAX_SERVERS = 256  # nonces remembered (one per origin); the oldest goes first


class DpopKeyInvalid(ValueError):
    """A serialised DPoP key that is not a private P-256 EC key."""


class DpopKey:
    """The private key of one session's DPoP key pair."""

    __slots__ = ("_key", "public_jwk", "thumbprint")

    def __init__(self, key: ECKey) -> None:
        if key.private_key is None or key.as_dict(private=False).get("crv") != "P-256":
            raise DpopKeyInvalid("a DPoP key is a private P-256 EC key")
        self._key = key
        self.public_jwk: dict[str, str] = {
            k: str(v) for k, v in key.as_dict(private=False).items() if k in ("kty", "crv", "x", "y")}
        # RFC 7638 thumbprint (SHA-256): the cnf.jkt the IdP binds the tokens to.
        self.thumbprint: str = key.thumbprint()

    @classmethod
    def generate(cls) -> DpopKey:
        return cls(ECKey.generate_key("P-256", private=True))

    @classmethod
    def from_secret(cls, text: str) -> DpopKey:
        """The key back from ``secret()`` (as read from the sealed session record)."""
        try:
            doc = json.loads(text)
            if not isinstance(doc, dict) or doc.get("kty") != "EC":
                raise DpopKeyInvalid("a DPoP key is a private P-256 EC key")
            return cls(ECKey.import_key(doc))
        except (ValueError, TypeError, JoseError) as exc:
            raise DpopKeyInvalid(type(exc).__name__) from None

    def secret(self) -> str:
        """The private JWK as compact JSON: seal it, never log or send it."""
        d = self._key.as_dict(private=True)
        return json.dumps({k: d[k] for k in ("kty", "crv", "x", "y", "d")},
                          separators=(",", ":"))

    def __repr__(self) -> str:
        return f"DpopKey(jkt={self.thumbprint!r})"

    def proof(self, method: str, url: str, *, now: float, access_token: str | None = None,
              nonce: str | None = None) -> str:
        """A fresh proof for one request (RFC 9449 4.2)."""
        claims: dict[str, object] = {"jti": secrets.token_urlsafe(24), "htm": method.upper(),
                                     "htu": htu(url), "iat": int(now)}
        if access_token is not None:
            claims["ath"] = ath(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        header = {"typ": PROOF_TYPE, "alg": ALGORITHM, "jwk": self.public_jwk}
        return jwt.encode(header, claims, self._key, algorithms=[ALGORITHM])


def provider_problem(dpop_algs: tuple[str, ...], issuer: str) -> str | None:
    """Why an IdP can't bind tokens to our keys (None when it can): it must list ES256 in
    its ``dpop_signing_alg_values_supported``."""
    if ALGORITHM in dpop_algs:
        return None
    listed = f"lists {list(dpop_algs)}" if dpop_algs else "does not advertise it"
    return (f"oidc.dpop: the IdP ({issuer}) must list {ALGORITHM} in "
            f"dpop_signing_alg_values_supported; it {listed}. Set oidc.dpop = false or "
            "enable DPoP at the IdP")


def htu(url: str) -> str:
    """The ``htu`` of a request URL: scheme, host and path, without query or fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path or "/", "", ""))


def ath(access_token: str) -> str:
    """base64url(SHA-256(access token)), unpadded (RFC 9449 4.2)."""
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


class DpopNonces:
    """The latest nonce each server (origin) gave us (RFC 9449 8 and 9), shared by every
    session: a nonce is the server's, not the session's. Bounded: least recently set first."""

    def __init__(self, max_servers: int = _MAX_SERVERS) -> None:
        self._nonces: OrderedDict[str, str] = OrderedDict()
        self._max = max_servers
        self.retries = 0  # use_dpop_nonce retries made

    def get(self, url: str) -> str | None:
        return self._nonces.get(_origin(url))

    def remember(self, url: str, nonce: str | None) -> bool:
        """Keep ``nonce`` (a response's DPoP-Nonce) for the server of ``url``; False if absent
        or not a valid nonce (RFC 9449 8.1: NQCHAR, 1 or more)."""
        if not nonce or len(nonce) > _MAX_NONCE or not all(
                c == "!" or "#" <= c <= "[" or "]" <= c <= "~" for c in nonce):
            return False
        origin = _origin(url)
        self._nonces[origin] = nonce
        self._nonces.move_to_end(origin)
        while len(self._nonces) > self._max:
            self._nonces.popitem(last=False)
        return True


def asks_for_nonce(status: int, error: object, nonce_header: str | None) -> bool:
    """A token endpoint's "retry with this nonce" answer: 400 ``use_dpop_nonce`` carrying a
    DPoP-Nonce header (RFC 9449 8)."""
    return status == 400 and error == USE_DPOP_NONCE and bool(nonce_header)


# The request a proof is made for: sends it with the given DPoP header value.
Send = Callable[[str], Awaitable[httpx.Response]]


class DpopProver:
    """Signs each request to a server with a session's key, and answers a server's
    ``use_dpop_nonce`` once: the request is sent again with a fresh proof carrying the nonce."""

    def __init__(self, clock: Clock, nonces: DpopNonces | None = None) -> None:
        self._clock = clock
        self.nonces = nonces or DpopNonces()
        self.on_retry: Callable[[], None] = lambda: None  # the gateway counts them (metrics)

    def proof(self, key: DpopKey, method: str, url: str, access_token: str | None = None) -> str:
        return key.proof(method, url, now=self._clock.now(), access_token=access_token,
                         nonce=self.nonces.get(url))

    async def send(self, key: DpopKey, method: str, url: str, send: Send) -> httpx.Response:
        """A token request (no ``ath``) with its proof; one retry on ``use_dpop_nonce``."""
        resp = await send(self.proof(key, method, url))
        nonce = resp.headers.get(NONCE_HEADER)
        self.nonces.remember(url, nonce)
        if asks_for_nonce(resp.status_code, _error_code(resp), nonce):
            self.nonces.retries += 1
            self.on_retry()
            resp = await send(self.proof(key, method, url))
            self.nonces.remember(url, resp.headers.get(NONCE_HEADER))
        return resp


def _error_code(resp: httpx.Response) -> object:
    if resp.status_code != 400 or len(resp.content) > 64 * 1024:
        return None
    try:
        doc = resp.json()
    except ValueError:
        return None
    return doc.get("error") if isinstance(doc, dict) else None
