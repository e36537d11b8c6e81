"""Unit tests for the exchange routes' token cache (bffgate.tokens.exchange) on the in-memory
store with a scripted exchanger: when a cached token serves, when a grant is sent, single
flight, what a refusal or an outage becomes, and that a refresh drops what was cached."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable

import pytest

from bffgate.audit import AuditEvent
from bffgate.clock import FrozenClock
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.errors import ExchangeRefused, IdentityProviderUnavailable, SessionEnded
from bffgate.metrics import Metrics
from bffgate.oidc.client import TokenResponse
from bffgate.oidc.errors import GrantRejected, ProviderUnavailable, TokenRejected
from bffgate.session.model import LoadedSession, NewTokens
from bffgate.session.service import SessionService
from bffgate.store.memory import MemoryStore
from bffgate.tokens.credential import TokenRequest
from bffgate.tokens.exchange import (
    FAILURE_HOLD_SECONDS,
    UNKNOWN_EXPIRY_TTL,
    ExchangeTokens,
    cache_key,
    renew_point,
    subject_digest,
)

ORDERS = TokenRequest(audience="https://orders.test", scope=("orders:read",))
BILLING = TokenRequest(resource="https://billing.test/")
Grant = Callable[[str, TokenRequest], Awaitable[TokenResponse]]


class World:
    """A store, a session service and ExchangeTokens for two routes on a frozen clock;
    records every grant sent."""

    def __init__(self) -> None:
        self.clock = FrozenClock()
        self.store = MemoryStore(self.clock)
        self.svc = SessionService(self.store, CookieCodec([secrets.token_urlsafe(32)]),
                                  self.clock, idle_timeout=3600, absolute_timeout=7200,
                                  refresh_ahead=10, jitter=lambda _bound: 0.0)
        self.metrics = Metrics()
        self.grants: list[tuple[str, TokenRequest]] = []
        self.grant: Grant = self._issue
        self.ttl = 100.0

    def tokens(self, *, wait: float = 1.0) -> ExchangeTokens:
        return ExchangeTokens({"/orders": ORDERS, "/billing": BILLING}, self._exchanger,
                              self.svc, self.store, self.clock, self.metrics,
                              login_url="/bff/login", renew_ahead=10, lease_seconds=5,
                              wait_seconds=wait, save_wait_seconds=wait)

    async def _exchanger(self, subject: str, request: TokenRequest) -> TokenResponse:
        self.grants.append((subject, request))
        return await self.grant(subject, request)

    async def _issue(self, subject: str, request: TokenRequest) -> TokenResponse:
        n = len(self.grants)
        return TokenResponse(f"xt-{n}-{request.audience or request.resource}",
                             self.clock.now() + self.ttl, None, None, None)

    async def session(self, access_token: str = "at-0") -> LoadedSession:
        _, s = await self.svc.create(NewTokens(access_token, "rt-0", None,
                                               self.clock.now() + 600),
                                     sub="alice", idp_sid="sid-1", claims={})
        return s

    async def reload(self, s: LoadedSession) -> LoadedSession:
        current = await self.svc.load(s.handle)
        assert current is not None
        return current

    def count(self, route: str, outcome: str) -> float:
        value = self.metrics.registry.get_sample_value(
            "bffgate_route_exchange_total", {"route": route, "outcome": outcome})
        return value or 0.0


@pytest.fixture
def world() -> World:
    return World()


async def test_the_first_call_exchanges_the_access_token_and_caches_the_result(
        world: World) -> None:
    s = await world.session()
    token = await world.tokens().token("/orders", s)
    assert token == "xt-1-https://orders.test"
    assert world.grants == [("at-0", ORDERS)]
    stored = (await world.reload(s)).data.exchanged
    assert list(stored) == [cache_key("/orders", ORDERS)]
    entry = stored[cache_key("/orders", ORDERS)]
    assert entry.subject == subject_digest("at-0") and entry.renew_at == world.clock.now() + 90
    assert world.count("/orders", "exchanged") == 1


async def test_a_cached_token_serves_until_it_nears_expiry(world: World) -> None:
    s = await world.session()
    tokens = world.tokens()
    first = await tokens.token("/orders", s)
    world.clock.advance(89)
    assert await tokens.token("/orders", await world.reload(s)) == first
    assert len(world.grants) == 1 and world.count("/orders", "cached") == 1
    world.clock.advance(1)  # renew_ahead (10 s) before its expiry: exchanged again
    assert await tokens.token("/orders", await world.reload(s)) != first
    assert len(world.grants) == 2


async def test_each_route_has_its_own_entry(world: World) -> None:
    s = await world.session()
    tokens = world.tokens()
    orders = await tokens.token("/orders", s)
    billing = await tokens.token("/billing", await world.reload(s))
    assert orders != billing and [r for _, r in world.grants] == [ORDERS, BILLING]
    data = (await world.reload(s)).data
    assert set(data.exchanged) == {cache_key("/orders", ORDERS), cache_key("/billing", BILLING)}


async def test_a_stale_session_object_finds_the_cache_after_the_lock(world: World) -> None:
    """A request that read the session before another one saved its exchange re-reads it
    under the lock and sends no second grant."""
    s = await world.session()
    tokens = world.tokens()
    first = await tokens.token("/orders", s)
    assert await tokens.token("/orders", s) == first  # s: read before the save
    assert len(world.grants) == 1


async def test_concurrent_calls_share_one_grant(world: World) -> None:
    s = await world.session()
    gate = asyncio.Event()

    async def slow(subject: str, request: TokenRequest) -> TokenResponse:
        await gate.wait()
        return await world._issue(subject, request)

    world.grant = slow
    tokens = world.tokens()
    calls = [asyncio.create_task(tokens.token("/orders", s)) for _ in range(50)]
    await asyncio.sleep(0.05)
    gate.set()
    results = await asyncio.gather(*calls)
    assert len(set(results)) == 1 and len(world.grants) == 1


async def test_two_instances_on_one_store_send_one_grant(world: World) -> None:
    """Two replicas (two ExchangeTokens, one store): the second waits for the first's lock,
    re-reads the session and takes its token."""
    s = await world.session()
    gate = asyncio.Event()

    async def slow(subject: str, request: TokenRequest) -> TokenResponse:
        await gate.wait()
        return await world._issue(subject, request)

    world.grant = slow
    a, b = world.tokens(wait=3), world.tokens(wait=3)
    first = asyncio.create_task(a.token("/orders", s))
    await asyncio.sleep(0.05)
    second = asyncio.create_task(b.token("/orders", s))
    await asyncio.sleep(0.05)
    gate.set()
    assert await first == await second
    assert len(world.grants) == 1


async def test_a_refresh_of_the_user_token_drops_the_cached_ones(world: World) -> None:
    s = await world.session()
    tokens = world.tokens()
    first = await tokens.token("/orders", s)
    refreshed = await world.svc.replace_tokens(await world.reload(s),
                                               NewTokens("at-1", "rt-1", None,
                                                         world.clock.now() + 600))
    assert refreshed is not None and refreshed.data.exchanged == {}
    again = await tokens.token("/orders", refreshed)
    assert again != first and world.grants[-1] == ("at-1", ORDERS)


async def test_an_entry_never_serves_another_access_token(world: World) -> None:
    """Belt and braces beside the drop on refresh: an entry remembers its subject."""
    s = await world.session()
    await world.tokens().token("/orders", s)
    entry = (await world.reload(s)).data.exchanged[cache_key("/orders", ORDERS)]
    assert entry.usable(subject_digest("at-0"), world.clock.now())
    assert not entry.usable(subject_digest("at-other"), world.clock.now())


async def test_a_changed_route_setting_does_not_reuse_the_old_token(world: World) -> None:
    assert cache_key("/orders", ORDERS) != cache_key(
        "/orders", TokenRequest(audience="https://orders.test", scope=("orders:write",)))


@pytest.mark.parametrize("error", ["invalid_grant", "invalid_target", "invalid_scope"])
async def test_a_refusal_is_a_403_for_the_route_and_the_session_lives_on(
        world: World, error: str, capsys: pytest.CaptureFixture[str]) -> None:
    s = await world.session()

    async def refuse(subject: str, request: TokenRequest) -> TokenResponse:
        cls = GrantRejected if error in GrantRejected.FATAL else TokenRejected
        raise cls(error, "no")

    world.grant = refuse
    with pytest.raises(ExchangeRefused) as caught:
        await world.tokens().token("/orders", s)
    assert caught.value.status == 403 and caught.value.slug == "exchange-refused"
    assert caught.value.reason == f"exchange_refused:{error}" and caught.value.audited
    current = await world.reload(s)
    assert current.data.tokens.access_token == "at-0" and current.data.exchanged == {}
    assert world.count("/orders", "refused") == 1
    out = capsys.readouterr().out
    assert AuditEvent.TOKEN_EXCHANGE_FAILED.value in out and f"refused:{error}" in out


async def test_an_idp_error_code_that_is_no_code_is_not_repeated(world: World) -> None:
    s = await world.session()

    async def refuse(subject: str, request: TokenRequest) -> TokenResponse:
        raise TokenRejected("<script>", "")

    world.grant = refuse
    with pytest.raises(ExchangeRefused) as caught:
        await world.tokens().token("/orders", s)
    assert "<script>" not in caught.value.detail and caught.value.reason.endswith(":other")


async def test_the_idp_away_is_a_503_with_retry_after(world: World) -> None:
    s = await world.session()

    async def down(subject: str, request: TokenRequest) -> TokenResponse:
        raise ProviderUnavailable("connect")

    world.grant = down
    with pytest.raises(IdentityProviderUnavailable) as caught:
        await world.tokens().token("/orders", s)
    assert caught.value.status == 503 and caught.value.retry_after
    assert world.count("/orders", "unavailable") == 1


async def test_a_session_gone_meanwhile_ends_the_request(world: World) -> None:
    s = await world.session()
    await world.svc.destroy(s)
    with pytest.raises(SessionEnded):
        await world.tokens().token("/orders", s)
    assert world.grants == []


async def test_a_lock_held_elsewhere_past_the_wait_is_a_503(world: World) -> None:
    s = await world.session()
    tokens = world.tokens(wait=0.1)
    key = cache_key("/orders", ORDERS).rpartition("#")[2]
    other = world.store.refresh_lock(f"{s.key}:exchange:{key}", 30)
    assert await other.acquire(0)
    with pytest.raises(IdentityProviderUnavailable):
        await tokens.token("/orders", s)
    assert world.grants == []


async def test_a_refresh_in_flight_leaves_the_result_uncached(world: World) -> None:
    """The save waits for the session's refresh lock; held past the wait, the token serves
    this request only (never racing the refresh's compare-and-set)."""
    s = await world.session()
    refresh = world.store.refresh_lock(s.key, 30)
    assert await refresh.acquire(0)
    token = await world.tokens(wait=0.1).token("/orders", s)
    assert token.startswith("xt-1")
    assert (await world.reload(s)).generation == s.generation  # nothing written


async def test_the_session_record_keeps_a_refresh_saved_meanwhile(world: World) -> None:
    """A refresh saved while the grant was out: the exchanged token (for the old access
    token) is not cached over it, and the refreshed tokens stay."""
    s = await world.session()

    async def refresh_meanwhile(subject: str, request: TokenRequest) -> TokenResponse:
        await world.svc.replace_tokens(await world.reload(s),
                                       NewTokens("at-1", "rt-1", None, world.clock.now() + 600))
        return await world._issue(subject, request)

    world.grant = refresh_meanwhile
    await world.tokens().token("/orders", s)
    current = await world.reload(s)
    assert current.data.tokens.access_token == "at-1" and current.data.exchanged == {}


def test_renew_point() -> None:
    assert renew_point(1000.0, 1100.0, 10) == 1090.0
    assert renew_point(1000.0, 1010.0, 60) == 1005.0  # never before half its life
    assert renew_point(1000.0, None, 10) == 1000.0 + UNKNOWN_EXPIRY_TTL


async def test_a_failure_is_answered_again_for_a_moment_without_a_grant(
        world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A burst on a refused route stays off the IdP: for FAILURE_HOLD_SECONDS the same
    session, route and user token get the same answer (counted, audited once)."""
    s = await world.session()

    async def refuse(subject: str, request: TokenRequest) -> TokenResponse:
        raise TokenRejected("invalid_target", "")

    world.grant = refuse
    tokens = world.tokens()
    for _ in range(3):
        with pytest.raises(ExchangeRefused) as caught:
            await tokens.token("/orders", s)
        assert caught.value.reason == "exchange_refused:invalid_target"
    assert len(world.grants) == 1 and world.count("/orders", "refused") == 3
    assert capsys.readouterr().out.count(AuditEvent.TOKEN_EXCHANGE_FAILED.value) == 1
    world.clock.advance(FAILURE_HOLD_SECONDS)
    with pytest.raises(ExchangeRefused):
        await tokens.token("/orders", s)
    assert len(world.grants) == 2


async def test_a_held_failure_does_not_outlive_the_user_token(world: World) -> None:
    s = await world.session()

    async def down(subject: str, request: TokenRequest) -> TokenResponse:
        raise ProviderUnavailable("connect")

    world.grant = down
    tokens = world.tokens()
    with pytest.raises(IdentityProviderUnavailable):
        await tokens.token("/orders", s)
    refreshed = await world.svc.replace_tokens(await world.reload(s), NewTokens(
        "at-1", "rt-1", None, world.clock.now() + 600))
    assert refreshed is not None
    world.grant = world._issue
    assert (await tokens.token("/orders", refreshed)).startswith("xt-2")  # at once
