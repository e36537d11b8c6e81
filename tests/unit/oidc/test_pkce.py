"""Unit tests for PKCE (RFC 7636, S256 only) and the per-login random values."""

from __future__ import annotations

import re

import pytest

from bffgate.oidc import pkce

# RFC 7636 Appendix B, kept as data.
RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC7636_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

# RFC 7636 4.1: code-verifier = 43*128unreserved; unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
UNRESERVED = re.compile(r"[A-Za-z0-9\-._~]+")
BASE64URL = re.compile(r"[A-Za-z0-9_-]+")


def test_rfc7636_appendix_b_vector() -> None:
    """The S256 challenge of the RFC's example verifier is the RFC's example challenge."""
    assert pkce.s256_challenge(RFC7636_VERIFIER) == RFC7636_CHALLENGE


def test_challenge_is_unpadded_base64url_of_a_sha256() -> None:
    """A challenge is 43 base64url characters (32 bytes, no '=' padding)."""
    challenge = pkce.s256_challenge(pkce.new_code_verifier())
    assert len(challenge) == 43
    assert BASE64URL.fullmatch(challenge)


def test_new_verifier_is_within_rfc_bounds_and_charset() -> None:
    """A fresh verifier has 43-128 characters, all from the unreserved set."""
    for _ in range(200):
        verifier = pkce.new_code_verifier()
        assert 43 <= len(verifier) <= 128
        assert UNRESERVED.fullmatch(verifier)


def test_new_verifier_is_unique() -> None:
    """Verifiers come from a CSPRNG: a thousand draws never repeat."""
    assert len({pkce.new_code_verifier() for _ in range(1000)}) == 1000


@pytest.mark.parametrize(
    "length",
    [
        pytest.param(43, id="minimum-43"),
        pytest.param(128, id="maximum-128"),
    ],
)
def test_challenge_accepts_verifier_lengths_at_the_bounds(length: int) -> None:
    """Verifiers of exactly 43 and 128 characters are accepted."""
    assert len(pkce.s256_challenge("a" * length)) == 43


@pytest.mark.parametrize(
    "length",
    [
        pytest.param(0, id="empty"),
        pytest.param(42, id="one-below-minimum"),
        pytest.param(129, id="one-above-maximum"),
    ],
)
def test_challenge_refuses_verifier_lengths_outside_the_bounds(length: int) -> None:
    """A verifier shorter than 43 or longer than 128 characters is a programming error."""
    with pytest.raises(ValueError, match="43-128"):
        pkce.s256_challenge("a" * length)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(pkce.new_state, id="state"),
        pytest.param(pkce.new_nonce, id="nonce"),
        pytest.param(pkce.new_code_verifier, id="code-verifier"),
    ],
)
def test_random_values_carry_at_least_256_bits(make: object) -> None:
    """state, nonce and verifier are >= 43 base64url characters (>= 256 bits) and unique."""
    assert callable(make)
    values = {make() for _ in range(500)}
    assert len(values) == 500
    for value in values:
        assert len(value) >= 43
        assert BASE64URL.fullmatch(value)


def test_state_and_nonce_are_independent() -> None:
    """state and nonce are drawn separately, never derived from each other."""
    assert pkce.new_state() != pkce.new_nonce()


def test_s256_is_the_only_challenge_method() -> None:
    """The module offers S256 and nothing else ('plain' is never sent)."""
    assert pkce.CHALLENGE_METHOD == "S256"
    exported = {name for name in vars(pkce) if not name.startswith("_")}
    assert not {n for n in exported if "plain" in n.lower()}
