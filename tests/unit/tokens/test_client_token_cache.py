"""ClientTokens on the memory store: the in-process cache, single flight per process and
across instances sharing one store, renewal before expiry, sealing, and failures. The grant
is a fake (pure logic); the e2e tier does the same against the real IdP and Redis."""

from __future__ import annotations

import asyncio
import json

import pytest

from bffgate import audit
from bffgate.clock import FrozenClock
from bffgate.errors import IdentityProviderUnavailable, RouteTokenUnavailable, StoreUnavailable
from bffgate.metrics import Metrics
from bffgate.oidc.client import TokenResponse
from bffgate.oidc.errors import ProviderUnavailable, TokenRejected
from bffgate.store.memory import MemoryStore
from bffgate.tokens.client import FAILURE_HOLD, ClientTokens
from bffgate.tokens.client_cache import CachedToken, SharedTokenCache, cache_key
from bffgate.tokens.credential import TokenRequest

KEY = "k" * 40
ORDERS = TokenRequest(("orders:read",), "", "https://orders.test")


class FakeGrant:
    """The IdP's client-credentials grant: counts calls, answers after ``delay``."""

    def __init__(self, clock: FrozenClock, *, lifetime: float | None = 300.0,
                 delay: float = 0.05) -> None:
        self.clock, self.lifetime, self.delay = clock, lifetime, delay
        self.calls: list[TokenRequest] = []
        self.fail: Exception | None = None

    async def __call__(self, request: TokenRequest) -> TokenResponse:
        self.calls.append(request)
        await asyncio.sleep(self.delay)
        if self.fail is not None:
            raise self.fail
        expires = self.clock.now() + self.lifetime if self.lifetime is not None else None
        return TokenResponse(f"client-at-{len(self.calls)}", expires, None, None, "orders:read")


def _tokens(store: MemoryStore, grant: FakeGrant, clock: FrozenClock,
            metrics: Metrics | None = None, keys: list[str] | None = None) -> ClientTokens:
    key = cache_key("https://idp.test", "bff", ORDERS)
    return ClientTokens({"/orders": (ORDERS, key), "/orders-too": (ORDERS, key)}, grant,
                        SharedTokenCache(store, keys or [KEY]), store, clock,
                        metrics or Metrics(), wait_seconds=5)


def _count(metrics: Metrics, route: str, outcome: str) -> float:
    value = metrics.registry.get_sample_value(
        "bffgate_client_token_total", {"route": route, "outcome": outcome})
    return value or 0.0


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


async def test_a_burst_in_one_process_sends_one_grant(clock: FrozenClock) -> None:
    store, grant, metrics = MemoryStore(clock), FakeGrant(clock), Metrics()
    tokens = _tokens(store, grant, clock, metrics)
    got = await asyncio.gather(*(tokens.token("/orders") for _ in range(200)))
    assert set(got) == {"client-at-1"} and len(grant.calls) == 1
    assert grant.calls[0] == ORDERS
    assert _count(metrics, "/orders", "issued") == 1
    assert _count(metrics, "/orders", "cached") == 199


async def test_routes_asking_the_same_share_one_token(clock: FrozenClock) -> None:
    store, grant = MemoryStore(clock), FakeGrant(clock)
    tokens = _tokens(store, grant, clock)
    assert await tokens.token("/orders") == await tokens.token("/orders-too")
    assert len(grant.calls) == 1


async def test_instances_on_one_store_send_one_grant(clock: FrozenClock) -> None:
    """Three replicas (three ClientTokens) on one store under a burst: one grant, one token
    (lock -> re-check the shared cache -> grant -> put)."""
    store, grant = MemoryStore(clock), FakeGrant(clock, delay=0.2)
    replicas = [_tokens(store, grant, clock) for _ in range(3)]
    got = await asyncio.gather(*(replicas[i % 3].token("/orders") for i in range(300)))
    assert set(got) == {"client-at-1"} and len(grant.calls) == 1


async def test_renewed_shortly_before_expiry_once(clock: FrozenClock) -> None:
    """A 300 s token is used until 30 s before it expires, then renewed once."""
    store, grant = MemoryStore(clock), FakeGrant(clock, lifetime=300)
    replicas = [_tokens(store, grant, clock) for _ in range(2)]
    assert await replicas[0].token("/orders") == "client-at-1"
    clock.advance(269)
    assert await replicas[1].token("/orders") == "client-at-1"  # from the shared cache
    clock.advance(2)  # 271 s: inside the renewal window
    got = await asyncio.gather(*(replicas[i % 2].token("/orders") for i in range(20)))
    assert set(got) == {"client-at-2"} and len(grant.calls) == 2


@pytest.mark.parametrize(("lifetime", "use_by"), [
    (3600.0, 3570.0),  # 30 s early
    (60.0, 54.0),      # 10 % of a short lifetime
    (None, 60.0),      # no expiry known: 60 s
])
def test_the_renewal_point(lifetime: float | None, use_by: float) -> None:
    token = CachedToken.issued("secret-at", 1000.0 + lifetime if lifetime else None, 1000.0)
    assert token.use_by == pytest.approx(1000.0 + use_by)
    assert "secret-at" not in repr(token)


async def test_the_store_holds_only_a_sealed_blob(clock: FrozenClock) -> None:
    store, grant = MemoryStore(clock), FakeGrant(clock)
    tokens = _tokens(store, grant, clock)
    await tokens.token("/orders")
    (blob, expires) = next(iter(store._cached.values()))
    assert b"client-at-1" not in blob
    assert expires == pytest.approx(clock.now() + 270)  # kept until the renewal point
    # Another key set can't open it: a miss (a new grant), never an error.
    other = _tokens(store, grant, clock, keys=["o" * 40])
    assert await other.token("/orders") == "client-at-2"


async def test_a_rotated_key_still_opens_the_old_blob(clock: FrozenClock) -> None:
    store, grant = MemoryStore(clock), FakeGrant(clock)
    await _tokens(store, grant, clock, keys=[KEY]).token("/orders")
    rotated = _tokens(store, grant, clock, keys=[KEY, "n" * 40])
    assert await rotated.token("/orders") == "client-at-1" and len(grant.calls) == 1


async def test_a_tampered_blob_is_a_miss(clock: FrozenClock) -> None:
    store, grant = MemoryStore(clock), FakeGrant(clock)
    await _tokens(store, grant, clock).token("/orders")
    key = next(iter(store._cached))
    store._cached[key] = (b"A" * 80, store._cached[key][1])
    assert await _tokens(store, grant, clock).token("/orders") == "client-at-2"


async def test_the_idp_away_is_a_503_idp_unavailable(clock: FrozenClock) -> None:
    store, grant, metrics = MemoryStore(clock), FakeGrant(clock), Metrics()
    grant.fail = ProviderUnavailable("connect error")
    tokens = _tokens(store, grant, clock, metrics)
    results = await asyncio.gather(*(tokens.token("/orders") for _ in range(10)),
                                   return_exceptions=True)
    assert all(isinstance(r, IdentityProviderUnavailable) for r in results)
    assert len({id(r) for r in results}) == 10  # one error object per request
    assert results[0].retry_after == 5 and len(grant.calls) == 1
    assert _count(metrics, "/orders", "failed") == 10


async def test_a_refusal_is_a_503_token_unavailable_held_briefly(clock: FrozenClock) -> None:
    """invalid_scope is the gateway's misconfiguration: 503 token-unavailable naming the
    error; for FAILURE_HOLD seconds the next requests get it without another grant."""
    store, grant = MemoryStore(clock), FakeGrant(clock)
    grant.fail = TokenRejected("invalid_scope", "nope")
    tokens = _tokens(store, grant, clock)
    with pytest.raises(RouteTokenUnavailable) as first:
        await tokens.token("/orders")
    assert first.value.status == 503 and first.value.slug == "token-unavailable"
    assert first.value.reason == "client_token_refused:invalid_scope"
    assert "invalid_scope" in first.value.detail and first.value.retry_after == 30
    with pytest.raises(RouteTokenUnavailable):
        await tokens.token("/orders")
    assert len(grant.calls) == 1
    clock.advance(FAILURE_HOLD + 0.1)
    grant.fail = None
    assert await tokens.token("/orders") == "client-at-2"


async def test_issuing_is_audited_once_without_the_token(clock: FrozenClock) -> None:
    seen: list[tuple[str, dict[str, object]]] = []
    original = audit.emit

    def spy(event: audit.AuditEvent, **fields: object) -> None:
        seen.append((event.value, fields))
        original(event, **fields)

    store, grant = MemoryStore(clock), FakeGrant(clock, lifetime=120)
    tokens = _tokens(store, grant, clock)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("bffgate.tokens.client.audit.emit", spy)
        await tokens.token("/orders")
        await tokens.token("/orders")
    assert seen == [("token.client_issued", {"route": "/orders", "expires_in": 120})]
    assert "client-at-1" not in json.dumps([f for _, f in seen])


async def test_a_token_the_store_could_not_keep_is_still_used(clock: FrozenClock) -> None:
    """The grant succeeded but the shared cache write failed: this process uses (and keeps)
    the token rather than answering 503 and granting again."""

    class FailingPut(MemoryStore):
        async def put_cached_token(self, key: str, blob: bytes, ttl_ms: int) -> None:
            raise StoreUnavailable(reason="redis_error")

    store, grant = FailingPut(clock), FakeGrant(clock)
    tokens = _tokens(store, grant, clock)
    assert await tokens.token("/orders") == "client-at-1"
    assert await tokens.token("/orders") == "client-at-1" and len(grant.calls) == 1
