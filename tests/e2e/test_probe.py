"""E2E: `bffgate probe` against real `bffgate serve` processes, the oidc-provider test IdP
and redis-server: healthy (without an account and with a test account), and each broken
setup the probe exists for (a proxy in front that strips code_challenge, a redirect URI the
IdP does not have, a wrong client secret): exit 1 naming the failing check. Every run
prints exactly one JSON line, with no secret value in it."""

from __future__ import annotations

import http.client
import json
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.e2e import COOKIE_KEY
from support.gateway import GatewayProcess, child_env, gateway_config
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.secrets_scan import remember
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e

CLIENT_ID = "bff-probe"
SECRET = "probe-" + secrets.token_urlsafe(24)
PASSWORD = "pw-" + secrets.token_urlsafe(12)
remember("probe client_secret", SECRET)
remember("probe password", PASSWORD)

IDP_CHECKS = ["idp_discovery", "pkce_s256_advertised", "client_auth", "redirect_uri_registered",
              "jwks", "clock_skew", "id_token_algs"]
NO_ACCOUNT = [*IDP_CHECKS, "login_redirect", "idp_authorize"]
WITH_ACCOUNT = [*NO_ACCOUNT, "idp_login", "callback", "user", "proxied_call", "logout"]
LONG_VALUE = re.compile(r"[A-Za-z0-9_-]{40,}")  # state, nonce, challenge, code, tokens, cookies


def _client(ports: list[int]) -> dict[str, Any]:
    return {"client_id": CLIENT_ID, "client_secret": SECRET,
            "redirect_uris": [f"http://localhost:{p}/bff/callback" for p in ports],
            "post_logout_redirect_uris": [f"http://localhost:{p}/" for p in ports],
            "token_endpoint_auth_method": "client_secret_basic",
            "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"]}


@pytest.fixture(scope="module")
def setup(redis_server: RedisServer, upstream: EchoUpstream) -> Iterator[dict[str, Any]]:
    """One IdP; three gateways: healthy (port registered), wrong client secret (port
    registered), and one on a port whose redirect URI the IdP does not have."""
    ok, bad_secret, unregistered = (free_port(), free_port()), (free_port(), free_port()), \
        (free_port(), free_port())
    with OidcProviderProcess([_client([ok[0], bad_secret[0]])]) as idp:
        def start(ports: tuple[int, int], secret: str) -> GatewayProcess:
            return GatewayProcess(gateway_config(
                port=ports[0], admin_port=ports[1], issuer=idp.issuer, client_id=CLIENT_ID,
                client_secret=secret, redis_url=redis_server.url, upstream=upstream.url,
                cookie_key=COOKIE_KEY)).start()
        gws = {"ok": start(ok, SECRET),
               "bad_secret": start(bad_secret, "not-the-registered-secret"),
               "unregistered": start(unregistered, SECRET)}
        try:
            yield {"idp": idp, **gws}
        finally:
            for gw in gws.values():
                gw.terminate()


def probe(gw: GatewayProcess, *args: str, before: bool = False) -> tuple[int, dict[str, Any]]:
    """Run `bffgate probe --json`; the exit code and the one JSON line (printed for the
    report: pytest -s shows it)."""
    config = ["--config", str(gw.config_path)]
    argv = [*config, "probe", "--json", *args] if before else ["probe", "--json", *config, *args]
    out = subprocess.run([sys.executable, "-m", "bffgate", *argv], capture_output=True,
                         text=True, timeout=120, env=child_env())
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 1, out.stdout + out.stderr
    print(f"\nPROBE {' '.join(args) or '(no account)'} -> exit {out.returncode}\n{lines[0]}")
    for value in (SECRET, PASSWORD, COOKIE_KEY, "code=", "code_verifier", "Bearer"):
        assert value not in lines[0]
    assert not LONG_VALUE.search(lines[0]), LONG_VALUE.search(lines[0])
    doc: dict[str, Any] = json.loads(lines[0])
    assert doc["probe"] == "bffgate" and isinstance(doc["duration_ms"], float)
    for check in doc["checks"]:
        assert set(check) == {"name", "ok", "detail", "duration_ms"}
    assert out.returncode == (0 if doc["ok"] else 1)
    return out.returncode, doc


def failed(doc: dict[str, Any]) -> dict[str, str]:
    return {c["name"]: c["detail"] for c in doc["checks"] if not c["ok"]}


def names(doc: dict[str, Any]) -> list[str]:
    return [c["name"] for c in doc["checks"]]


# ------------------------------------------------------------------------------- healthy


def test_healthy_without_an_account(setup: dict[str, Any], tmp_path: Path) -> None:
    """Everything short of the interactive login passes: exit 0, every check ok; the
    metrics land in the textfile (written atomically: no temporary file left)."""
    textfile = tmp_path / "bffgate_probe.prom"
    code, doc = probe(setup["ok"], "--textfile", str(textfile), before=True)
    assert code == 0 and doc["ok"] is True, failed(doc)
    assert names(doc) == NO_ACCOUNT
    detail = {c["name"]: c["detail"] for c in doc["checks"]}
    assert "invalid_grant" in detail["client_auth"]
    assert "code_challenge (S256), state, nonce, redirect_uri " \
           f"http://localhost:{setup['ok'].port}/bff/callback" in detail["login_redirect"]
    assert "showed its login page" in detail["idp_authorize"]
    metrics = {(s.name, s.labels.get("check")): s.value
               for f in text_string_to_metric_families(textfile.read_text())
               for s in f.samples}
    assert metrics[("bffgate_probe_success", None)] == 1
    assert metrics[("bffgate_probe_duration_seconds", None)] > 0
    assert {c for n, c in metrics if n == "bffgate_probe_check_success"} == set(NO_ACCOUNT)
    assert all(v == 1 for (n, _), v in metrics.items() if n == "bffgate_probe_check_success")
    assert [p.name for p in tmp_path.iterdir()] == [textfile.name]


def test_healthy_with_a_test_account(setup: dict[str, Any], tmp_path: Path,
                                     upstream: EchoUpstream) -> None:
    """login -> IdP form -> callback -> /bff/user -> one proxied call -> logout, all ok;
    the upstream got the call with the user's bearer token; the session ended."""
    pw = tmp_path / "password"
    pw.write_text(PASSWORD + "\n")
    gw = setup["ok"]
    seen = len(upstream.seen)
    code, doc = probe(gw, "--user", "probe-user", "--password-file", str(pw))
    assert code == 0 and doc["ok"] is True, failed(doc)
    assert names(doc) == WITH_ACCOUNT
    assert all(c["duration_ms"] >= 0 for c in doc["checks"])
    calls = [r for r in upstream.seen[seen:] if r["path"].startswith("/api")]
    assert len(calls) == 1
    assert any(k == "authorization" and v.startswith("Bearer ") for k, v in calls[0]["headers"])
    assert [e.get("sub") for e in gw.audit("login.succeeded")][-1:] == ["probe-user"]
    assert gw.audit("logout") or gw.audit("session.ended")


def test_pushgateway_gets_the_run(setup: dict[str, Any]) -> None:
    """--pushgateway PUTs the run's metrics (job bffgate_probe) to a real HTTP receiver."""
    got: list[tuple[str, str, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            got.append(("PUT", self.path, self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        code, doc = probe(setup["ok"], "--pushgateway", f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, failed(doc)
    ((method, path, body),) = got
    assert (method, path) == ("PUT", "/metrics/job/bffgate_probe")
    assert b"bffgate_probe_success 1.0" in body
    assert b'bffgate_probe_check_success{check="login_redirect"} 1.0' in body


def test_metrics_that_cannot_be_delivered_fail_the_run(setup: dict[str, Any],
                                                       tmp_path: Path) -> None:
    """An unwritable textfile and a Pushgateway that is not there are failures of their own
    (monitoring would go blind): checks textfile and pushgateway, exit 1."""
    code, doc = probe(setup["ok"], "--textfile", str(tmp_path / "missing" / "p.prom"),
                      "--pushgateway", f"http://127.0.0.1:{free_port()}")
    assert code == 1
    bad = failed(doc)
    assert set(bad) == {"textfile", "pushgateway"}
    assert "No such file or directory" in bad["textfile"]
    assert "Connection refused" in bad["pushgateway"]


# ------------------------------------------------------------------------------- broken


class StripProxy:
    """A misconfigured reverse proxy in front of the gateway: forwards every request, and
    drops ``code_challenge`` from the Location of every redirect it passes back."""

    def __init__(self, target_port: int) -> None:
        target = target_port

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", target, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                headers["Host"] = f"localhost:{target}"
                conn.request("GET", self.path, headers=headers)
                resp = conn.getresponse()
                body = resp.read()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() == "location":
                        v = _drop(v, "code_challenge")
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                conn.close()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://localhost:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _drop(url: str, param: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != param]
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def strip_proxy(setup: dict[str, Any]) -> Iterator[StripProxy]:
    proxy = StripProxy(setup["ok"].port)
    yield proxy
    proxy.close()


def test_proxy_that_strips_code_challenge(setup: dict[str, Any],
                                          strip_proxy: StripProxy) -> None:
    """Probed through the proxy: the redirect lacks code_challenge, the gateway's own (at
    --direct-url) has it, and the IdP refuses the request (PKCE required)."""
    gw = setup["ok"]
    code, doc = probe(gw, "--url", strip_proxy.url, "--direct-url", gw.url)
    assert code == 1
    bad = failed(doc)
    assert set(bad) == {"login_redirect", "proxy_passthrough", "idp_authorize"}
    assert "code_challenge missing" in bad["login_redirect"]
    assert "code_challenge dropped" in bad["proxy_passthrough"]
    assert "invalid_request" in bad["idp_authorize"]
    assert "code_challenge must be provided" in bad["idp_authorize"]


def test_proxy_that_strips_code_challenge_without_direct_url(
        setup: dict[str, Any], strip_proxy: StripProxy) -> None:
    """Without --direct-url the missing challenge is still caught (the gateway always sends
    it), and the hint names the proxy."""
    code, doc = probe(setup["ok"], "--url", strip_proxy.url)
    assert code == 1
    bad = failed(doc)
    assert set(bad) == {"login_redirect", "idp_authorize"}
    assert "a proxy in front of" in bad["login_redirect"]


def test_redirect_uri_not_registered(setup: dict[str, Any]) -> None:
    """A gateway whose redirect URI the IdP does not have: the registration check and the
    IdP's answer to the login redirect both fail, naming the mismatch."""
    code, doc = probe(setup["unregistered"])
    assert code == 1
    bad = failed(doc)
    assert set(bad) == {"redirect_uri_registered", "idp_authorize"}
    assert "redirect_uri did not match" in bad["redirect_uri_registered"]
    assert "redirect_uri did not match" in bad["idp_authorize"]
    assert "HTTP 400" in bad["idp_authorize"]
    assert "state : ***" in bad["idp_authorize"]  # the IdP's page quotes it: scrubbed


def test_wrong_client_secret(setup: dict[str, Any], tmp_path: Path) -> None:
    """The gateway (and the probe, with its config) has a wrong secret: invalid_client at
    the token endpoint; with a test account the callback fails too (the code exchange)."""
    code, doc = probe(setup["bad_secret"])
    assert code == 1
    bad = failed(doc)
    assert set(bad) == {"client_auth"}
    assert "invalid_client" in bad["client_auth"]
    pw = tmp_path / "password"
    pw.write_text(PASSWORD)
    code, doc = probe(setup["bad_secret"], "--user", "probe-user", "--password-file", str(pw))
    assert code == 1
    assert set(failed(doc)) == {"client_auth", "callback"}


# ------------------------------------------------------------------------------- usage


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--user", "u"], "--user and --password-file go together", id="user-alone"),
    pytest.param(["--user", "u", "--password-file", "/nonexistent/pw"], "cannot read it",
                 id="password-file-missing"),
])
def test_usage_errors_exit_2(setup: dict[str, Any], args: list[str], message: str) -> None:
    out = subprocess.run([sys.executable, "-m", "bffgate", "probe", "--json", "--config",
                          str(setup["ok"].config_path), *args],
                         capture_output=True, text=True, timeout=60, env=child_env())
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr
    assert json.loads(out.stdout)["checks"][0]["name"] == "usage"


def test_config_error_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\npublic_url = 'not a url'\n")
    out = subprocess.run([sys.executable, "-m", "bffgate", "probe", "--config", str(bad)],
                         capture_output=True, text=True, timeout=60, env=child_env())
    assert out.returncode == 2, out.stdout + out.stderr
    assert "server.public_url" in out.stderr
