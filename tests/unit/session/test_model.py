"""Unit tests for the pure session rules: token validity, refresh scheduling, claims."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bffgate.oidc.id_token import jwt_expiry
from bffgate.session.model import (
    VISIBLE_CLAIMS,
    LoginRecord,
    SessionData,
    Tokens,
    refresh_point,
    visible_claims,
)

NOW = 1_700_000_000.0


def _tokens(*, refresh_token: str | None = "rt-secret", expires: float | None = NOW + 300,
            refresh_at: float | None = NOW + 240) -> Tokens:
    return Tokens("at-secret", refresh_token, "it-secret", expires, refresh_at)


def _jwt(payload: Any) -> str:
    def b64(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    header = b64(b'{"alg":"RS256"}')
    return f"{header}.{b64(body)}.c2ln"


# --- Tokens -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tokens", "now", "expected"),
    [
        pytest.param(_tokens(), NOW, False, id="fresh"),
        pytest.param(_tokens(), NOW + 239.9, False, id="just-before-refresh-point"),
        pytest.param(_tokens(), NOW + 240, True, id="at-refresh-point"),
        pytest.param(_tokens(), NOW + 299, True, id="inside-refresh-window"),
        pytest.param(_tokens(), NOW + 400, True, id="already-expired"),
        pytest.param(_tokens(refresh_token=None), NOW + 400, False, id="no-refresh-token"),
        pytest.param(_tokens(refresh_at=None, expires=None), NOW + 10**6, False,
                     id="no-expiry-known"),
        pytest.param(_tokens(refresh_at=None), NOW + 400, False, id="no-refresh-point"),
    ],
)
def test_refresh_token_due(tokens: Tokens, now: float, expected: bool) -> None:
    """A refresh is due from the refresh point on, and only with a refresh token (which is
    what it returns then)."""
    assert tokens.refresh_token_due(now) == ("rt-secret" if expected else None)


@pytest.mark.parametrize(
    ("tokens", "now", "expected"),
    [
        pytest.param(_tokens(), NOW, True, id="fresh"),
        pytest.param(_tokens(), NOW + 299.9, True, id="just-before-expiry"),
        pytest.param(_tokens(), NOW + 300, False, id="at-expiry"),
        pytest.param(_tokens(), NOW + 301, False, id="after-expiry"),
        pytest.param(_tokens(expires=None, refresh_at=None), NOW + 10**6, True,
                     id="unknown-expiry-is-trusted"),
    ],
)
def test_access_token_valid(tokens: Tokens, now: float, expected: bool) -> None:
    """The access token is usable strictly before its expiry (unknown expiry: usable)."""
    assert tokens.access_token_valid(now) is expected


def test_tokens_repr_shows_presence_only() -> None:
    """repr never contains a token value."""
    text = repr(_tokens()) + str(_tokens())
    for secret in ("at-secret", "rt-secret", "it-secret"):
        assert secret not in text
    assert "refresh_token=True" in text
    assert "refresh_token=False" in repr(_tokens(refresh_token=None))


def test_session_data_repr_shows_no_token() -> None:
    """SessionData's repr goes through the masked Tokens repr."""
    data = SessionData("user-1", "idp-sid", {"name": "Ann"}, NOW, NOW + 3600, "logout-1",
                       _tokens())
    assert "at-secret" not in repr(data)
    assert "rt-secret" not in repr(data)


def test_login_record_repr_hides_verifier_and_nonce() -> None:
    """The login record's repr shows neither the PKCE verifier nor the nonce nor the binding."""
    record = LoginRecord("verifier-secret", "nonce-secret", "/orders", NOW, "binding-hash")
    text = repr(record)
    for secret in ("verifier-secret", "nonce-secret", "binding-hash"):
        assert secret not in text
    assert "/orders" in text


def test_tokens_json_round_trip() -> None:
    """The sealed token blob carries the three tokens; times are stored beside it."""
    tokens = _tokens()
    again = Tokens.from_json(tokens.to_json(), tokens.access_expires_at, tokens.refresh_at)
    assert again == tokens


def test_tokens_json_round_trip_without_optional_tokens() -> None:
    """Missing refresh and ID tokens survive as None."""
    tokens = Tokens("at", None, None, None)
    assert Tokens.from_json(tokens.to_json(), None, None) == tokens


def test_with_tokens_replaces_only_tokens() -> None:
    """with_tokens returns a copy with the new token set, everything else equal."""
    data = SessionData("user-1", None, {}, NOW, NOW + 3600, "logout-1", _tokens())
    new = _tokens(refresh_token="rt-2")
    changed = data.with_tokens(new)
    assert changed.tokens is new
    assert (changed.sub, changed.logout_id, changed.created_at) == ("user-1", "logout-1", NOW)
    assert data.tokens.refresh_token == "rt-secret"


# --- refresh_point ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issued", "expires", "ahead", "jitter", "expected"),
    [
        pytest.param(NOW, NOW + 3600, 60, 0, NOW + 3540, id="ahead-of-expiry"),
        pytest.param(NOW, NOW + 3600, 60, 15, NOW + 3525, id="jitter-moves-it-earlier"),
        pytest.param(NOW, NOW + 3600, 0, 0, NOW + 3600, id="no-ahead-at-expiry"),
        pytest.param(NOW, NOW + 10, 60, 0, NOW + 5, id="short-token-half-life-floor"),
        pytest.param(NOW, NOW + 120, 60, 0, NOW + 60, id="ahead-equals-half-life"),
        pytest.param(NOW, NOW + 120, 60, 30, NOW + 60, id="jitter-never-below-half-life"),
        pytest.param(NOW, NOW + 300, 60, 5, NOW + 235, id="typical-5-minute-token"),
        pytest.param(NOW, NOW, 60, 0, NOW, id="already-expired-refresh-now"),
    ],
)
def test_refresh_point(issued: float, expires: float, ahead: float, jitter: float,
                       expected: float) -> None:
    """refresh_ahead (+ jitter) before expiry, but never before half the lifetime is used."""
    assert refresh_point(issued, expires, ahead, jitter) == pytest.approx(expected)


def test_refresh_point_without_expiry() -> None:
    """No known expiry, no scheduled refresh."""
    assert refresh_point(NOW, None, 60, 5) is None


def test_refresh_point_is_before_expiry_and_after_half_life() -> None:
    """Over a grid of lifetimes and settings, the point stays inside [half-life, expiry]."""
    for lifetime in (1, 10, 59, 60, 61, 300, 3600, 86400):
        for ahead in (0, 30, 60, 600):
            for jitter in (0, 1, 10, 30):
                point = refresh_point(NOW, NOW + lifetime, ahead, jitter)
                assert point is not None
                assert NOW + lifetime / 2 <= point <= NOW + lifetime


def test_tokens_need_refresh_exactly_from_their_refresh_point() -> None:
    """refresh_token_due and refresh_point agree: a 10 s token is refreshed after 5 s, not at
    once."""
    point = refresh_point(NOW, NOW + 10, 60, 0)
    tokens = _tokens(expires=NOW + 10, refresh_at=point)
    assert tokens.refresh_token_due(NOW + 4.9) is None
    assert tokens.refresh_token_due(NOW + 5) == "rt-secret"


# --- jwt_expiry ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        pytest.param(_jwt({"exp": 1_700_000_300}), 1_700_000_300.0, id="int-exp"),
        pytest.param(_jwt({"exp": 1_700_000_300.5}), 1_700_000_300.5, id="float-exp"),
        pytest.param(_jwt({"sub": "u"}), None, id="no-exp"),
        pytest.param(_jwt({"exp": "1700000300"}), None, id="string-exp"),
        pytest.param(_jwt({"exp": True}), None, id="bool-exp"),
        pytest.param(_jwt({"exp": None}), None, id="null-exp"),
        pytest.param(_jwt([1, 2]), None, id="payload-array"),
        pytest.param(_jwt(b"not json"), None, id="payload-not-json"),
        pytest.param(_jwt(b'{"exp": NaN}'), None, id="nan-exp"),
        pytest.param(_jwt(b'{"exp": Infinity}'), None, id="infinite-exp"),
        pytest.param(_jwt(b'{"exp": 1e400}'), None, id="overflowing-float-exp"),
        pytest.param(_jwt(b'{"exp": ' + b"9" * 400 + b"}"), None, id="huge-int-exp"),
        pytest.param(_jwt(b"\xff\xfe\x00"), None, id="payload-not-utf8"),
        pytest.param("2YotnFZFEjr1zCsicMWpAA", None, id="opaque"),
        pytest.param("a.b", None, id="two-parts"),
        pytest.param("a.b.c.d", None, id="four-parts"),
        pytest.param("x.!!!.y", None, id="garbage-three-parts"),
        pytest.param("x.é.y", None, id="non-ascii"),
        pytest.param("", None, id="empty"),
        pytest.param(_jwt({"exp": 1, "pad": "x" * 20000}), None, id="oversized"),
    ],
)
def test_jwt_expiry(token: str, expected: float | None) -> None:
    """exp of a JWT access token, read without verification; None for anything else."""
    assert jwt_expiry(token) == expected


# --- visible_claims -----------------------------------------------------------------------


def test_visible_claims_keep_profile_claims() -> None:
    """Profile claims the SPA needs are kept with their values."""
    claims = {"sub": "u1", "name": "Ann", "email": "ann@example.com", "email_verified": True,
              "iss": "https://idp", "amr": ["pwd"]}
    assert visible_claims(claims) == claims


@pytest.mark.parametrize(
    "claim",
    [
        pytest.param(name, id=name)
        for name in ("nonce", "at_hash", "c_hash", "s_hash", "sid", "jti", "azp", "aud", "exp",
                     "iat", "nbf", "access_token", "refresh_token", "id_token", "cnf",
                     "_claim_sources", "_claim_names", "custom_secret")
    ],
)
def test_visible_claims_drop_token_like_claims(claim: str) -> None:
    """Nonce, hashes, session ids, token material and unknown claims never reach the SPA."""
    out = visible_claims({"sub": "u1", claim: "value"})
    assert out == {"sub": "u1"}


def test_visible_claims_allow_list_has_no_token_material() -> None:
    """The allow-list itself holds no token-like name."""
    for name in VISIBLE_CLAIMS:
        assert "token" not in name
        assert "hash" not in name
        assert name not in {"nonce", "sid", "jti"}
