"""Pure validation of OIDC Back-Channel Logout 1.0 logout tokens (section 2.6).

Checks, each failure named in ``IdTokenInvalid.check``: the signature rules of ID tokens
(allow-listed asymmetric ``alg``, IdP keys only), ``typ`` if present is ``logout+jwt`` (or
plain ``JWT``),
``iss`` exact, ``aud`` contains the client, ``iat`` present and not in the future, ``exp``
(if present) not past, ``jti`` present, the ``events`` claim holds the back-channel logout
event as a JSON object, no ``nonce`` (so an ID token can never pass as a logout token),
and ``sub`` and/or ``sid`` present. Replay (``jti`` seen before) is checked by the caller,
which owns the store.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from joserfc.jwk import KeySet

from bffgate.oidc.errors import IdTokenInvalid
from bffgate.oidc.id_token import decode_signed, parse_compact

LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"


@dataclass(frozen=True)
class LogoutRequest:
    sub: str | None
    sid: str | None
    jti: str
    iat: float


def verify_logout_token(
    token: str, keys: KeySet, *, issuer: str, client_id: str, now: float, leeway: int,
    algorithms: Collection[str], max_age: int = 600,
) -> LogoutRequest:
    parsed = parse_compact(token)
    typ = parsed.header.get("typ")
    # "logout+jwt" is recommended; plain "JWT" is what many IdPs still send (the events and
    # nonce rules keep an ID token from passing as a logout token either way).
    if typ is not None and str(typ).lower() not in ("logout+jwt", "application/logout+jwt",
                                                    "jwt"):
        raise IdTokenInvalid("typ")
    claims = decode_signed(token, keys, algorithms, parsed)
    return check_logout_claims(claims, issuer=issuer, client_id=client_id, now=now,
                               leeway=leeway, max_age=max_age)


def check_logout_claims(
    claims: dict[str, Any], *, issuer: str, client_id: str, now: float, leeway: int,
    max_age: int = 600,
) -> LogoutRequest:
    if claims.get("iss") != issuer:
        raise IdTokenInvalid("iss")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if client_id not in auds:
        raise IdTokenInvalid("aud")
    raw_iat = claims.get("iat")
    if not isinstance(raw_iat, int | float) or isinstance(raw_iat, bool):
        raise IdTokenInvalid("iat")
    iat = float(raw_iat)
    if iat - leeway > now or iat + max_age + leeway < now:
        raise IdTokenInvalid("iat")
    exp = claims.get("exp")
    if exp is not None and (not _number(exp) or exp + leeway <= now):
        raise IdTokenInvalid("exp")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 256:
        raise IdTokenInvalid("jti")
    events = claims.get("events")
    if not isinstance(events, dict) or not isinstance(events.get(LOGOUT_EVENT), dict):
        raise IdTokenInvalid("events")
    if "nonce" in claims:
        raise IdTokenInvalid("nonce")
    sub, sid = claims.get("sub"), claims.get("sid")
    sub = sub if isinstance(sub, str) and sub else None
    sid = sid if isinstance(sid, str) and sid else None
    if sub is None and sid is None:
        raise IdTokenInvalid("sub_or_sid")
    return LogoutRequest(sub, sid, jti, iat)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
