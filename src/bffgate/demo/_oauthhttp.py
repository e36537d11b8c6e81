"""HTTP helpers of the development identity provider: forms, errors, client auth, PKCE."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from starlette.requests import Request
from starlette.responses import JSONResponse

MAX_FORM_BYTES = 64 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


@dataclass(frozen=True)
class Client:
    """The one registered confidential client."""

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]


def single_valued(pairs: Iterable[tuple[str, str]]) -> dict[str, str] | None:
    """Parameters as a dict, or None when one is repeated (RFC 6749 section 3.1)."""
    params: dict[str, str] = {}
    for name, value in pairs:
        if name in params:
            return None
        params[name] = value
    return params


async def read_form(request: Request) -> dict[str, str] | None:
    """A small urlencoded body as single-valued parameters, or None if it is not one."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        return None
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return single_valued(parse_qsl(text, keep_blank_values=True))


def oauth_error(error: str, description: str, status: int = 400) -> JSONResponse:
    """An RFC 6749 section 5.2 error response."""
    headers = dict(NO_STORE)
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="devidp"'
    return JSONResponse(
        {"error": error, "error_description": description}, status_code=status, headers=headers
    )


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        return None
    return unquote_plus(client_id), unquote_plus(secret)


def authenticate_client(request: Request, form: dict[str, str], client: Client) -> str | None:
    """Check client_secret_basic or client_secret_post; return an error description or None."""
    header = request.headers.get("authorization")
    posted_id = form.get("client_id")
    posted_secret = form.get("client_secret")
    if header is not None:
        if posted_secret is not None:
            return "use exactly one client authentication method"
        credentials = _basic_credentials(header)
        if credentials is None:
            return "malformed Basic credentials"
        if posted_id is not None and posted_id != credentials[0]:
            return "client_id does not match the Basic credentials"
    elif posted_id is not None and posted_secret is not None:
        credentials = (posted_id, posted_secret)
    else:
        return "client authentication required"
    id_ok = hmac.compare_digest(credentials[0].encode(), client.client_id.encode())
    secret_ok = hmac.compare_digest(credentials[1].encode(), client.client_secret.encode())
    return None if id_ok and secret_ok else "client authentication failed"


def is_s256_challenge(challenge: str) -> bool:
    """Whether a code_challenge has the shape of a base64url SHA-256 digest."""
    return _S256_CHALLENGE.fullmatch(challenge) is not None


def pkce_s256_matches(verifier: str, challenge: str) -> bool:
    """RFC 7636 S256: BASE64URL(SHA256(verifier)) equals the challenge."""
    if _VERIFIER.fullmatch(verifier) is None:
        return False
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    computed = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return hmac.compare_digest(computed, challenge)


def with_query(url: str, params: dict[str, str | None]) -> str:
    """Add parameters (skipping None) to a URL's query, keeping the ones it has."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    query.extend((name, value) for name, value in params.items() if value is not None)
    return urlunsplit(parts._replace(query=urlencode(query)))
