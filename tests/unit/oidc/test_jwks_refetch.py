"""Unit tests for the JWKS cache behind ID-token validation (oidc/discovery.py through
OidcClient.validate_id_token): a token whose kid is known never refetches; an unknown kid
(the IdP rotated its keys) refetches exactly once, and then at most once per
JWKS_REFETCH_MIN_INTERVAL however many such tokens arrive (a forged kid is not a way to
make the gateway hammer the IdP). The IdP is an httpx.MockTransport counting JWKS fetches;
time moves only when a test moves it (each IdP call takes 10 ms of it)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from bffgate.clock import FrozenClock
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.discovery import JWKS_REFETCH_MIN_INTERVAL, Discovery
from bffgate.oidc.errors import IdTokenInvalid

ISSUER = "https://idp.example.com"
CLIENT = "bff"
NOW = 1_700_000_000.0
TTL = 3600


def _key(kid: str) -> ECKey:
    return ECKey.generate_key("P-256", parameters={"kid": kid})


class JwksIdP:
    """Discovery + a JWKS whose published keys the test changes (key rotation)."""

    def __init__(self, clock: FrozenClock, *published: ECKey) -> None:
        self.clock = clock
        self.published = list(published)
        self.jwks_fetches = 0
        self.jwks_down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.clock.advance(0.01)  # a round trip takes time
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json={
                "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                "code_challenge_methods_supported": ["S256"]})
        if request.url.path == "/jwks":
            self.jwks_fetches += 1
            if self.jwks_down:
                return httpx.Response(503)
            return httpx.Response(200, json={"keys": [k.as_dict(private=False)
                                                      for k in self.published]})
        return httpx.Response(404)


def _client(idp: JwksIdP) -> OidcClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp))
    rp = RelyingParty(issuer=ISSUER, client_id=CLIENT, client_secret="s", client_auth="none",
                      private_key="", redirect_uri="https://app.example.com/bff/callback",
                      scopes=("openid",), id_token_algs=("ES256",), clock_skew=60,
                      use_par=False, extra_auth_params={})
    return OidcClient(rp, http, Discovery(http, ISSUER, idp.clock, ttl=TTL), idp.clock)


def _id_token(key: ECKey, clock: FrozenClock, **header: Any) -> str:
    now = int(clock.now())
    return jwt.encode({"alg": "ES256", "kid": key.kid, **header},
                      {"iss": ISSUER, "sub": "alice", "aud": CLIENT, "iat": now,
                       "exp": now + 300}, key)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


async def _validate(client: OidcClient, token: str) -> dict[str, Any]:
    # bounded: a lock taken twice on one path would hang the test (and the gateway) for ever
    return await asyncio.wait_for(client.validate_id_token(token, nonce=None), 5)


async def test_a_known_kid_never_refetches(clock: FrozenClock) -> None:
    k1 = _key("k1")
    idp = JwksIdP(clock, k1)
    client = _client(idp)
    assert (await _validate(client, _id_token(k1, clock)))["sub"] == "alice"
    assert idp.jwks_fetches == 1  # the first use loads the JWKS
    for _ in range(5):
        clock.advance(JWKS_REFETCH_MIN_INTERVAL + 1)  # refetching would be allowed...
        await _validate(client, _id_token(k1, clock))
    assert idp.jwks_fetches == 1  # ...but a known kid has no reason to


async def test_an_unknown_kid_refetches_exactly_once_and_finds_the_rotated_key(
        clock: FrozenClock) -> None:
    k1, k2 = _key("k1"), _key("k2")
    idp = JwksIdP(clock, k1)
    client = _client(idp)
    await _validate(client, _id_token(k1, clock))
    clock.advance(JWKS_REFETCH_MIN_INTERVAL + 1)
    idp.published = [k1, k2]  # the IdP rotates: tokens now come signed by k2
    claims = await _validate(client, _id_token(k2, clock))
    assert claims["sub"] == "alice"
    assert idp.jwks_fetches == 2
    await _validate(client, _id_token(k2, clock))
    await _validate(client, _id_token(k1, clock))
    assert idp.jwks_fetches == 2  # both kids are known now


async def test_unknown_kids_refetch_at_most_once_per_interval(clock: FrozenClock) -> None:
    k1 = _key("k1")
    idp = JwksIdP(clock, k1)
    client = _client(idp)
    await _validate(client, _id_token(k1, clock))
    clock.advance(JWKS_REFETCH_MIN_INTERVAL + 1)
    forged = _key("forged")  # a kid the IdP never publishes
    for _ in range(20):
        with pytest.raises(IdTokenInvalid) as exc:
            await _validate(client, _id_token(forged, clock))
        assert exc.value.check == "signature"
    assert idp.jwks_fetches == 2  # one refetch for the first, none for the 19 after it
    clock.advance(JWKS_REFETCH_MIN_INTERVAL)
    with pytest.raises(IdTokenInvalid):
        await _validate(client, _id_token(forged, clock))
    assert idp.jwks_fetches == 3  # the interval has passed: one more, no more


async def test_concurrent_tokens_with_a_new_kid_share_one_refetch(clock: FrozenClock) -> None:
    k1, k2 = _key("k1"), _key("k2")
    idp = JwksIdP(clock, k1)
    client = _client(idp)
    await _validate(client, _id_token(k1, clock))
    clock.advance(JWKS_REFETCH_MIN_INTERVAL + 1)
    idp.published = [k1, k2]
    results = await asyncio.gather(*[_validate(client, _id_token(k2, clock)) for _ in range(25)])
    assert all(r["sub"] == "alice" for r in results)
    assert idp.jwks_fetches == 2


async def test_an_expired_cache_is_refetched_even_for_a_known_kid(clock: FrozenClock) -> None:
    k1 = _key("k1")
    idp = JwksIdP(clock, k1)
    client = _client(idp)
    await _validate(client, _id_token(k1, clock))
    clock.advance(TTL + 1)
    await _validate(client, _id_token(k1, clock))
    assert idp.jwks_fetches == 2


async def test_a_refetch_with_expired_metadata_completes(clock: FrozenClock) -> None:
    """The JWKS refetch needs the metadata (jwks_uri); when that cache has expired too
    (first use, or a back-channel logout an hour after the last login) it is fetched on the
    way, not waited for under the lock the refetch already holds."""
    k1 = _key("k1")
    idp = JwksIdP(clock, k1)
    client = _client(idp)
    assert (await _validate(client, _id_token(k1, clock)))["sub"] == "alice"
    clock.advance(TTL + 1)  # metadata and JWKS both expired
    assert (await _validate(client, _id_token(k1, clock)))["sub"] == "alice"
    assert idp.jwks_fetches == 2


async def test_unknown_kids_while_the_jwks_endpoint_fails_are_tried_once_per_interval(
        clock: FrozenClock) -> None:
    """The rate limit counts attempts, not successes: with the JWKS endpoint failing, a
    stream of tokens with a forged kid must not turn into a stream of IdP calls."""
    k1 = _key("k1")
    idp = JwksIdP(clock, k1)
    client = _client(idp)
    await _validate(client, _id_token(k1, clock))
    clock.advance(JWKS_REFETCH_MIN_INTERVAL + 1)
    idp.jwks_down = True
    forged = _key("forged")
    for _ in range(10):
        with pytest.raises(IdTokenInvalid):
            await _validate(client, _id_token(forged, clock))
    assert idp.jwks_fetches == 2  # one failed attempt, then the cached keys
    assert (await _validate(client, _id_token(k1, clock)))["sub"] == "alice"  # still served
