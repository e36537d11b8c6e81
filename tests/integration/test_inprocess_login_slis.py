"""Integration: the login SLIs through IdP and store outages (support/inprocess.py: the
whole gateway in-process, the dev IdP behind a switch, memory or real Redis). M5
(bffgate_login_attempts_total) counts a login that fails because the IdP or the store is
down, at /bff/login and at the callback, which no login.failed reason counter did; M1
counts the exchange as unavailable; M3 times /bff/login whatever happens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from support.inprocess import Harness

pytestmark = pytest.mark.integration


def attempts(h: Harness) -> dict[tuple[str, ...], float]:
    return {tuple(s.labels[k] for k in ("step", "outcome", "reason")): s.value
            for m in h.gw.metrics.login_attempts.collect() for s in m.samples
            if s.name.endswith("_total")}


def exchanges(h: Harness, result: str) -> float:
    return h.gw.metrics.token_exchange.labels(result)._value.get()


def timed(h: Harness) -> float:
    return next(s.value for m in h.gw.metrics.login_start_duration.collect()
                for s in m.samples if s.name.endswith("_count"))


async def test_idp_down_at_the_code_exchange(h: Harness) -> None:
    r = await h.browser.get("/bff/login", params={"returnUrl": "/app"})
    assert r.status_code == 302
    callback_url = await h.sign_in_at_idp(r.headers["location"], "alice")
    h.idp.down = True
    r = await h.browser.get(callback_url)
    assert r.status_code == 503
    assert attempts(h) == {("callback", "failed", "idp_unavailable"): 1}
    assert exchanges(h, "unavailable") == 1 and exchanges(h, "ok") == 0
    assert timed(h) == 1


async def test_idp_down_at_login_start_then_back(h: Harness) -> None:
    """Discovery never fetched (a gateway started while the IdP was away): /bff/login
    cannot build the authorization request."""
    h.idp.down = True
    h.gw.discovery._meta = None  # no metadata cached yet (stale metadata would be served)
    r = await h.browser.get("/bff/login")
    h.idp.down = False
    assert r.status_code == 503
    assert attempts(h) == {("login", "failed", "idp_unavailable"): 1}
    cb = await h.login()
    assert cb.status_code == 302
    assert attempts(h) == {("login", "failed", "idp_unavailable"): 1,
                           ("callback", "succeeded", "ok"): 1}
    assert timed(h) == 2


async def test_a_refused_state_is_a_failed_attempt_with_its_reason(h: Harness) -> None:
    r = await h.browser.get("/bff/login")
    state = parse_qs(urlsplit(r.headers["location"]).query)["state"][0]
    r = await h.browser.get("/bff/callback", params={"state": state[:-2] + "xx", "code": "c"})
    assert r.status_code == 400
    assert attempts(h) == {("callback", "failed", "state_unknown"): 1}
