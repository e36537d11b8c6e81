"""E2E: the PKCE SLI metrics (README "SLOs and alerts", M1-M6 and the proxied ones) move
when their event happens, on the real gateway (``bffgate serve``) with the real IdP
(oidc-provider), Redis and upstream. Each test reads /metrics before and after and asserts
exactly which series moved, by how much."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from support.e2e import login, start_login
from support.gateway import ADMIN_TOKEN, GatewayProcess
from support.idp import complete_idp_login
from support.secrets_scan import remember

pytestmark = pytest.mark.e2e
remember("admin_token", ADMIN_TOKEN)

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def samples(gateway: GatewayProcess) -> Samples:
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(trust_env=False) as c:
        m = await c.get(gateway.admin_url + "/metrics",
                        headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert m.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(m.text) for s in family.samples}


class Delta:
    """What moved between two scrapes: ``moved(name, **labels)`` for one series, and
    ``changed(prefix)`` for every series of a family that moved at all."""

    def __init__(self, before: Samples, after: Samples) -> None:
        self.before, self.after = before, after

    def moved(self, name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in self.after, f"no series {name}{labels}"
        return self.after[key] - self.before.get(key, 0.0)

    def changed(self, name: str) -> dict[frozenset[tuple[str, str]], float]:
        return {labels: value - self.before.get((n, labels), 0.0)
                for (n, labels), value in self.after.items()
                if n == name and value != self.before.get((n, labels), 0.0)}


def _failed(reason: str, step: str = "callback") -> dict[str, str]:
    return {"step": step, "outcome": "failed", "reason": reason}


async def _callback_url(browser, idp_client) -> str:
    authorize = await start_login(browser)
    cb = await complete_idp_login(idp_client, authorize, browser.base_url + "/bff/callback")
    remember("authorization_code", parse_qs(urlsplit(cb).query)["code"][0])
    return cb


async def test_a_login_moves_m1_m3_m5_and_a_proxied_call_availability_and_latency(
        gateway, browser, idp_client, redis_server) -> None:
    before = await samples(gateway)
    assert (await login(browser, idp_client, redis_server.url)).status_code == 302
    assert (await browser.api("GET", "/api/slo")).status_code == 200
    d = Delta(before, await samples(gateway))
    assert d.moved("bffgate_token_exchange_total", result="ok") == 1  # M1
    assert d.moved("bffgate_login_start_duration_seconds_count") == 1  # M3
    # sub-millisecond buckets exist, and the one observation falls under 2.5 s
    assert ("bffgate_login_start_duration_seconds_bucket", frozenset({("le", "0.00025")})) in d.after
    assert d.moved("bffgate_login_start_duration_seconds_bucket", le="2.5") == 1
    assert d.changed("bffgate_login_attempts_total") == {  # M5: one attempt, succeeded
        frozenset({("step", "callback"), ("outcome", "succeeded"), ("reason", "ok")}): 1}
    assert d.moved("bffgate_proxy_requests_total", route="/api", status_class="2xx") == 1
    assert d.moved("bffgate_proxy_duration_seconds_count", route="/api") == 1
    assert not d.changed("bffgate_callback_missing_params_total")  # M4
    assert not d.changed("bffgate_log_redactions_total")  # M6: a clean login logs no secret


async def test_verifier_mismatch_moves_m2_m1_and_m5(gateway, browser, idp_client) -> None:
    """Two logins in one browser; login A's code is brought back with login B's state, so
    the gateway redeems it with B's code_verifier: the IdP answers invalid_grant (PKCE)."""
    before = await samples(gateway)
    authorize_a = await start_login(browser)
    authorize_b = await start_login(browser)
    cb_a = await complete_idp_login(idp_client, authorize_a, browser.base_url + "/bff/callback")
    qa = parse_qs(urlsplit(cb_a).query)
    remember("authorization_code", qa["code"][0])
    state_b = parse_qs(urlsplit(authorize_b).query)["state"][0]
    r = await browser.get("/bff/callback?" + urlencode(
        {"code": qa["code"][0], "state": state_b, "iss": qa["iss"][0]}))
    assert r.status_code == 400
    d = Delta(before, await samples(gateway))
    assert d.changed("bffgate_token_exchange_total") == {  # M1 failure = M2
        frozenset({("result", "invalid_grant")}): 1}
    assert d.changed("bffgate_login_attempts_total") == {
        frozenset(_failed("token_exchange").items()): 1}
    assert d.moved("bffgate_login_start_duration_seconds_count") == 2
    assert any(e.get("reason") == "token_exchange:invalid_grant"
               for e in gateway.audit("login.failed"))


@pytest.mark.parametrize("dropped", ["code", "state", "code+state"])
async def test_a_callback_missing_code_or_state_moves_m4_and_m5(
        gateway, browser, idp_client, dropped: str) -> None:
    """A proxy between the IdP and the gateway that drops a parameter of the redirect."""
    cb = await _callback_url(browser, idp_client)
    q = {k: v[0] for k, v in parse_qs(urlsplit(cb).query).items()}
    for name in dropped.split("+"):
        q.pop(name)
    before = await samples(gateway)
    assert (await browser.get("/bff/callback?" + urlencode(q))).status_code == 400
    d = Delta(before, await samples(gateway))
    assert d.changed("bffgate_callback_missing_params_total") == {
        frozenset({("param", name)}): 1 for name in dropped.split("+")}
    reason = "state_missing" if "state" in dropped else "code_missing"
    assert d.changed("bffgate_login_attempts_total") == {frozenset(_failed(reason).items()): 1}
    assert not d.changed("bffgate_token_exchange_total")  # nothing reached the IdP


async def test_an_idp_error_is_no_parameter_loss(gateway, browser, idp) -> None:
    authorize = await start_login(browser)
    state = parse_qs(urlsplit(authorize).query)["state"][0]
    before = await samples(gateway)
    r = await browser.get("/bff/callback?" + urlencode(
        {"error": "access_denied", "state": state, "iss": idp.issuer}))
    assert r.status_code == 400
    d = Delta(before, await samples(gateway))
    assert not d.changed("bffgate_callback_missing_params_total")
    assert d.changed("bffgate_login_attempts_total") == {
        frozenset(_failed("idp_error").items()): 1}


async def test_login_refusals_count_as_failed_attempts_and_are_timed(gateway, browser) -> None:
    """M5 covers /bff/login itself: a refused returnUrl is a failed login attempt."""
    before = await samples(gateway)
    for bad in ("https://evil.example/", "//evil.example"):
        r = await browser.get("/bff/login", params={"returnUrl": bad})
        assert r.status_code == 400
    r = await browser.get("/bff/login?returnUrl=/a&returnUrl=/b")
    assert r.status_code == 400
    d = Delta(before, await samples(gateway))
    assert d.changed("bffgate_login_attempts_total") == {
        frozenset(_failed("return_url", step="login").items()): 3}
    assert d.moved("bffgate_login_start_duration_seconds_count") == 3  # M3: refusals too
    assert d.moved("bffgate_logins_started_total") == 0


async def test_a_failing_upstream_moves_proxied_availability(gateway, browser) -> None:
    before = await samples(gateway)
    r = await browser.get("/dead/x")
    assert r.status_code == 502
    d = Delta(before, await samples(gateway))
    assert d.moved("bffgate_proxy_requests_total", route="/dead", status_class="5xx") == 1
    assert d.moved("bffgate_proxy_duration_seconds_count", route="/dead") == 1


async def test_a_secret_shaped_value_in_a_log_line_moves_m6(gateway, browser) -> None:
    """A JWT in a proxied path: the gateway's request.proxied line would carry it; the log
    pipeline redacts it and counts the redaction."""
    jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJzbG8tdGVzdCJ9.c2xvLXRlc3Qtc2lnbmF0dXJl"
    before = await samples(gateway)
    assert (await browser.get(f"/public/{jwt}")).status_code == 200
    d = Delta(before, await samples(gateway))
    assert d.moved("bffgate_log_redactions_total") >= 1
    assert jwt not in gateway.log()


async def test_every_metric_the_chart_uses_is_in_the_gateways_metrics(
        gateway, browser, idp_client, redis_server) -> None:
    """The Helm chart's recording rules, alerts (values-production.yaml) and dashboard
    panels read only metric families this gateway's /metrics has, and match only label
    names its series carry. Drives a login, proxied calls (2xx, 5xx), a CSRF refusal, a
    refused /bff/login and a callback without code first, so labelled series exist."""
    from prometheus_client.parser import text_string_to_metric_families

    from support.slo_chart import (
        TARGET_LABELS,
        dashboard,
        dashboard_exprs,
        family_of,
        production_values,
        records_of,
        render_docs,
        rule_groups,
        selected,
    )

    assert (await login(browser, idp_client, redis_server.url)).status_code == 302
    assert (await browser.api("GET", "/api/slo")).status_code == 200
    assert (await browser.get("/api/slo")).status_code == 401  # no X-CSRF
    assert (await browser.get("/dead/x")).status_code == 502
    assert (await browser.get("/bff/login", params={"returnUrl": "//x"})).status_code == 400
    cb = await _callback_url(browser, idp_client)
    q = {k: v[0] for k, v in parse_qs(urlsplit(cb).query).items() if k != "code"}
    assert (await browser.get("/bff/callback?" + urlencode(q))).status_code == 400

    async with httpx.AsyncClient(trust_env=False) as c:
        text = (await c.get(gateway.admin_url + "/metrics",
                            headers={"authorization": f"Bearer {ADMIN_TOKEN}"})).text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    docs = render_docs(production_values())
    groups = rule_groups(docs)
    exprs = [r["expr"] for g in groups for r in g["rules"]] + dashboard_exprs(dashboard(docs))
    records = records_of(groups)
    checked = set()
    for name, labels in selected(exprs).metrics.items():
        if name == "up" or ":" in name:  # Prometheus' own, or recorded by the chart
            assert name == "up" or name in records, name
            continue
        family = family_of(name, families)
        assert family, f"the chart reads {name}; /metrics has no such family"
        seen = {k for s in families[family].samples for k in s.labels}
        if families[family].samples:
            assert labels - TARGET_LABELS <= seen, (name, labels, seen)
            checked.add(family)
    # the SLI families all had series to check their labels against
    assert {"bffgate_token_exchange", "bffgate_login_attempts", "bffgate_callback_missing_params",
            "bffgate_login_start_duration_seconds", "bffgate_log_redactions",
            "bffgate_proxy_requests", "bffgate_proxy_duration_seconds"} <= checked, checked
