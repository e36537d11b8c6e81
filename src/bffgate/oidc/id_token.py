"""Pure ID-token validation (OIDC Core 3.1.3.7) with joserfc, given keys and the time.

Checks, each failure named in ``IdTokenInvalid.check``: structure, ``alg`` on the
allow-list (never ``none``, never HMAC), signature, ``iss`` (exact), ``aud`` contains the
client, ``azp`` (required with several audiences, must equal the client), ``exp``, ``iat``
not in the future (leeway), ``nonce`` equal to the login record's, ``sub`` present.
"""

from __future__ import annotations

import base64
import hmac
import json
import math
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet
from joserfc.jws import CompactSignature

from bffgate.oidc.errors import IdTokenInvalid

MAX_ID_TOKEN = 64 * 1024


@dataclass(frozen=True)
class ParsedJws:
    """A compact JWS split and decoded, not verified: its header chooses the key, and the
    same parse is then verified (the token is not split and decoded twice)."""

    header: dict[str, Any]
    compact: CompactSignature


def parse_compact(token: str) -> ParsedJws:
    """The token parsed; nothing in it is trusted yet."""
    if not isinstance(token, str) or len(token) > MAX_ID_TOKEN or token.count(".") != 2:
        raise IdTokenInvalid("malformed")
    try:
        obj = jws.extract_compact(token.encode("ascii"))
    except (JoseError, ValueError, UnicodeEncodeError) as exc:
        raise IdTokenInvalid("malformed") from exc
    return ParsedJws(dict(obj.headers()), obj)


def decode_signed(token: str, keys: KeySet, algorithms: Collection[str],
                  parsed: ParsedJws | None = None) -> dict[str, Any]:
    """Verify a compact JWS signed by the IdP and return its claims (not yet checked).

    ``alg`` must be on the allow-list and never ``none`` or HMAC (no key confusion with
    the IdP's public keys); headers that would pull keys from the token itself (``jku``,
    ``jwk``, ``x5u``) or demand unknown processing (``crit``) are refused. ``parsed``:
    ``parse_compact(token)`` when the caller already has it (it chose the keys). Verified
    as ``joserfc.jwt.decode`` does it (``jws.validate_compact``, then the payload must be
    a JSON object), from the one parse."""
    if parsed is None:
        parsed = parse_compact(token)
    header = parsed.header
    alg = header.get("alg")
    if not isinstance(alg, str) or alg not in algorithms or alg.lower() == "none" \
            or alg.upper().startswith("HS"):
        raise IdTokenInvalid("alg")
    if header.get("crit") or "jku" in header or "jwk" in header or "x5u" in header:
        raise IdTokenInvalid("header")
    try:
        with warnings.catch_warnings():
            # joserfc warns on every "EdDSA" (RFC 9864 prefers "Ed25519"); IdPs still
            # publish "EdDSA", and the operator's allow-list already chose to accept it.
            warnings.simplefilter("ignore", SecurityWarning)
            valid = jws.validate_compact(parsed.compact, keys, algorithms=[alg])
    except JoseError as exc:
        raise IdTokenInvalid("signature") from exc
    except (ValueError, TypeError) as exc:
        raise IdTokenInvalid("malformed") from exc
    if not valid:
        raise IdTokenInvalid("signature")
    try:
        claims = json.loads(parsed.compact.payload)
    except (ValueError, TypeError) as exc:
        raise IdTokenInvalid("malformed") from exc
    if not isinstance(claims, dict):
        raise IdTokenInvalid("malformed")
    return claims


def verify_id_token(
    token: str,
    keys: KeySet,
    *,
    issuer: str,
    client_id: str,
    nonce: str | None,
    now: float,
    leeway: int,
    algorithms: Collection[str],
    parsed: ParsedJws | None = None,
) -> dict[str, Any]:
    """Return the claims of a valid ID token or raise IdTokenInvalid."""
    claims = decode_signed(token, keys, algorithms, parsed)
    check_claims(claims, issuer=issuer, client_id=client_id, nonce=nonce, now=now, leeway=leeway)
    return claims


def check_claims(
    claims: dict[str, Any], *, issuer: str, client_id: str, nonce: str | None,
    now: float, leeway: int,
) -> None:
    """The claim rules alone (pure; unit-tested with named cases)."""
    if claims.get("iss") != issuer:
        raise IdTokenInvalid("iss")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise IdTokenInvalid("sub")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else None
    if not auds or client_id not in auds:
        raise IdTokenInvalid("aud")
    azp = claims.get("azp")
    if (len(auds) > 1 and azp is None) or (azp is not None and azp != client_id):
        raise IdTokenInvalid("azp")
    exp, iat = claims.get("exp"), claims.get("iat")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp + leeway <= now:
        raise IdTokenInvalid("exp")
    if not isinstance(iat, int | float) or isinstance(iat, bool) or iat - leeway > now:
        raise IdTokenInvalid("iat")
    if nonce is not None:
        got = claims.get("nonce")
        if not isinstance(got, str) or not hmac.compare_digest(got.encode(), nonce.encode()):
            raise IdTokenInvalid("nonce")


def jwt_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT access token read without verification (the IdP issued it to
    us over TLS; it is used only to schedule refresh). None for opaque tokens."""
    parts = token.split(".")
    if len(parts) != 3 or len(token) > 16384:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    exp = payload.get("exp") if isinstance(payload, dict) else None
    if not isinstance(exp, int | float) or isinstance(exp, bool):
        return None
    try:
        value = float(exp)
    except OverflowError:  # an integer too large for a float
        return None
    return value if math.isfinite(value) else None  # json.loads accepts NaN and Infinity


def access_token_expiry(expires_in: object, access_token: str, now: float) -> float | None:
    """When the access token expires: ``expires_in`` (a number, or a numeric string as some
    IdPs send), else the JWT ``exp`` of the token itself, else unknown (None)."""
    if isinstance(expires_in, str) and expires_in.strip().isdigit():
        expires_in = int(expires_in)
    if isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
        return now + float(expires_in)
    return jwt_expiry(access_token)
