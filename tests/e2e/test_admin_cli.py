"""E2E: the admin listener (/healthz, /readyz, /metrics, /admin/sessions) and the CLI
(check-config, doctor, sessions) against the running gateway, Redis and IdP. The sessions
API and CLI in depth: test_admin_sessions.py."""

from __future__ import annotations

import json
import subprocess
import sys

import httpx
import pytest

from support.e2e import login
from support.gateway import ADMIN_TOKEN, child_env
from support.secrets_scan import remember
from support.upstream import header_values

pytestmark = pytest.mark.e2e
remember("admin_token", ADMIN_TOKEN)


def bffgate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bffgate", *args], capture_output=True,
                          text=True, timeout=60, env=child_env())


async def _metric_samples(gateway) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    async with httpx.AsyncClient(trust_env=False) as c:
        m = await c.get(gateway.admin_url + "/metrics",
                        headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert m.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(m.text) for s in family.samples}


async def test_health_ready_and_metrics(gateway, browser, idp_client, redis_server) -> None:
    before = await _metric_samples(gateway)
    await login(browser, idp_client, redis_server.url)
    assert (await browser.api("GET", "/api/metrics-probe")).status_code == 200
    assert (await browser.get("/api/metrics-probe")).status_code == 401  # no X-CSRF
    async with httpx.AsyncClient(trust_env=False) as c:
        assert (await c.get(gateway.admin_url + "/healthz")).json() == {"status": "ok"}
        ready = await c.get(gateway.admin_url + "/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {"store": "ok", "idp_metadata": "ok"}
        denied = await c.get(gateway.admin_url + "/metrics")
        assert denied.status_code == 401
        assert denied.headers["www-authenticate"].startswith("Bearer")
        assert denied.headers["content-type"] == "application/problem+json"
        m = await c.get(gateway.admin_url + "/metrics",
                        headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert m.status_code == 200
    text = m.text
    assert 'bffgate_login_results_total{outcome="succeeded",reason="ok"}' in text
    # A fresh registry already lists every name: what counts is that the requests this test
    # made moved exactly the counters they should, by exactly one.
    after = await _metric_samples(gateway)

    def moved(name: str, **labels: str) -> float:
        key = (name, frozenset(labels.items()))
        assert key in after, (name, labels)
        return after[key] - before.get(key, 0.0)

    assert moved("bffgate_logins_started_total") == 1
    assert moved("bffgate_login_results_total", outcome="succeeded", reason="ok") == 1
    assert moved("bffgate_token_exchange_total", result="ok") == 1
    assert moved("bffgate_login_duration_seconds_count") == 1
    assert moved("bffgate_proxy_requests_total", route="/api", status_class="2xx") == 1
    assert moved("bffgate_proxy_requests_total", route="/api", status_class="4xx") == 1
    assert moved("bffgate_csrf_rejections_total") == 1
    assert moved("bffgate_redis_errors_total") == 0


async def test_admin_lists_and_revokes_a_users_sessions(gateway, browser, idp_client,
                                                        redis_server) -> None:
    await login(browser, idp_client, redis_server.url, user="carol")
    assert (await browser.api("GET", "/bff/user")).status_code == 200
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    async with httpx.AsyncClient(trust_env=False) as c:
        listed = await c.get(gateway.admin_url + "/admin/sessions", params={"sub": "carol"},
                             headers=auth)
        assert listed.status_code == 200 and len(listed.json()["sessions"]) == 1
        revoked = await c.delete(gateway.admin_url + "/admin/sessions",
                                 params={"sub": "carol"}, headers=auth)
        assert revoked.json() == {"revoked": 1}
    assert (await browser.api("GET", "/bff/user")).status_code == 401
    assert any(e.get("sub") == "carol" for e in gateway.audit("session.revoked"))


async def test_user_optional_route(browser, idp_client, redis_server, upstream) -> None:
    """token = user_optional: anonymous calls pass without a bearer, logged-in ones get it."""
    r = await browser.api("GET", "/opt/anon")
    assert r.status_code == 200
    assert header_values(upstream.last_for("/opt/anon"), "authorization") == []
    await login(browser, idp_client, redis_server.url)
    r = await browser.api("GET", "/opt/known")
    assert r.status_code == 200
    assert header_values(upstream.last_for("/opt/known"), "authorization")[0].startswith("Bearer ")


def test_check_config_and_doctor(gateway, tmp_path) -> None:
    ok = bffgate("check-config", "--config", str(gateway.config_path))
    assert ok.returncode == 0, ok.stderr
    assert "configuration OK" in ok.stdout
    doctor = bffgate("doctor", "--config", str(gateway.config_path))
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "[ok] session store (redis)" in doctor.stdout
    assert "[ok] PKCE S256 advertised" in doctor.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\npublic_url = "http://app.example.com"\n[cookie]\nsame_site = "none"\n')
    failed = bffgate("check-config", "--config", str(bad))
    assert failed.returncode == 1
    for key in ("server.public_url", "oidc.issuer", "oidc.client_id", "cookie.same_site",
                "cookie.secret_keys"):
        assert key in failed.stderr, key


async def test_sessions_cli(gateway, browser, idp_client, redis_server) -> None:
    await login(browser, idp_client, redis_server.url, user="dave")
    listed = bffgate("sessions", "--config", str(gateway.config_path), "list", "--sub", "dave",
                     "--json")
    assert listed.returncode == 0 and len(json.loads(listed.stdout)["sessions"]) == 1
    session_id = json.loads(listed.stdout)["sessions"][0]["id"]
    out = bffgate("sessions", "--config", str(gateway.config_path), "revoke", session_id)
    assert out.returncode == 0 and "revoked 1" in out.stdout
    assert (await browser.api("GET", "/bff/user")).status_code == 401
