"""E2E: `bffgate doctor` against the real test IdP (oidc-provider) and redis-server, with the
mistakes a developer makes in the first hour; each failure is one line that says what
failed, where, why and what to try."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY
from support.gateway import child_env, write_toml
from support.idp import OidcProviderProcess, free_port
from support.processes import ChildProcess, log_has
from support.redis import RedisServer

pytestmark = pytest.mark.e2e

REDIS_FIX = ("is Redis running there? check redis.url (host, port, password, rediss:// for "
             "TLS) or BFFGATE_REDIS__URL")


def doctor(tmp_path: Path, port: int, issuer: str, redis_url: str, **changes: Any) -> list[str]:
    config: dict[str, Any] = {
        "server": {"public_url": f"http://localhost:{port}", "listen": f"127.0.0.1:{port}",
                   "admin_listen": ""},
        "oidc": {"issuer": issuer, "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        "cookie": {"secret_keys": [COOKIE_KEY]},
        "redis": {"url": redis_url},
        "routes": [{"prefix": "/api", "upstream": "http://127.0.0.1:9", "token": "user"}],
    }
    for section, values in changes.items():
        config[section].update(values)
    path = tmp_path / "doctor.toml"
    write_toml(path, config)
    out = subprocess.run([sys.executable, "-m", "bffgate", "doctor", "--config", str(path)],
                         capture_output=True, text=True, timeout=60, env=child_env())
    assert "Traceback" not in out.stderr, out.stderr
    lines = out.stdout.splitlines()
    failed = [line for line in lines if line.startswith("[FAIL]")]
    assert out.returncode == (1 if failed else 0), out.stdout + out.stderr
    return lines


def fails(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("[FAIL]")]


def test_everything_right(tmp_path, gw_ports, idp: OidcProviderProcess,
                          redis_server: RedisServer) -> None:
    """The e2e client as registered: every check passes, the client and the redirect URI
    are really checked at the IdP."""
    port = gw_ports[0]
    lines = doctor(tmp_path, port, idp.issuer, redis_server.url)
    assert lines[-1] == "all checks passed"
    assert (f"[ok] client credentials: the token endpoint authenticated client '{CLIENT_ID}' "
            "(client_secret_basic; a made-up code got invalid_grant, as it should)") in lines
    assert (f"[ok] redirect URI http://localhost:{port}/bff/callback: accepted by the IdP "
            "(pushed authorization request)") in lines


def test_wrong_client_secret(tmp_path, gw_ports, idp: OidcProviderProcess,
                             redis_server: RedisServer) -> None:
    """A wrong secret is caught (it used to pass: doctor never authenticated the client)."""
    lines = doctor(tmp_path, gw_ports[0], idp.issuer, redis_server.url,
                   oidc={"client_secret": "not-the-registered-secret"})
    assert fails(lines) == [
        f"[FAIL] client credentials: {idp.issuer}/token (client_id '{CLIENT_ID}'): the IdP "
        "refused the client (invalid_client: client authentication failed); check "
        "oidc.client_id, oidc.client_secret and oidc.client_auth = client_secret_basic "
        "against the client's registration at the IdP"]
    assert lines[-1] == "1 check(s) failed"


def test_wrong_redirect_uri(tmp_path, gw_ports, idp: OidcProviderProcess,
                            redis_server: RedisServer) -> None:
    """public_url on another port than registered: the pushed authorization request says
    the redirect URI is not registered."""
    other = free_port()
    lines = doctor(tmp_path, other, idp.issuer, redis_server.url)
    uri = f"http://localhost:{other}/bff/callback"
    assert fails(lines) == [
        f"[FAIL] redirect URI {uri}: {idp.issuer}/request (pushed authorization request): "
        "the IdP refused it (invalid_request: redirect_uri did not match any of the client's "
        f"registered redirect_uris); register exactly {uri} as a redirect URI of client "
        f"'{CLIENT_ID}' at the IdP, or fix server.public_url / oidc.redirect_path"]


def test_wrong_redirect_uri_without_par(tmp_path, gw_ports, idp: OidcProviderProcess,
                                        redis_server: RedisServer) -> None:
    """With a wrong secret PAR can't be used: the authorization endpoint's error page is
    read instead, and both mistakes are reported."""
    other = free_port()
    lines = doctor(tmp_path, other, idp.issuer, redis_server.url,
                   oidc={"client_secret": "not-the-registered-secret"})
    uri = f"http://localhost:{other}/bff/callback"
    found = fails(lines)
    assert len(found) == 2 and found[0].startswith("[FAIL] client credentials: ")
    assert found[1].startswith(
        f"[FAIL] redirect URI {uri}: {idp.issuer}/auth: the IdP refused the authorization "
        "request (HTTP 400: ")
    assert "redirect_uri did not match any of the client's registered redirect_uris" in found[1]
    assert found[1].endswith(f"); register exactly {uri} as a redirect URI of client "
                             f"'{CLIENT_ID}' at the IdP, or fix server.public_url / "
                             "oidc.redirect_path")


def test_redis_down(tmp_path, gw_ports, idp: OidcProviderProcess) -> None:
    """Nothing on the Redis port: the URL (password masked), the cause, what to check."""
    port = free_port()
    lines = doctor(tmp_path, gw_ports[0], idp.issuer, f"redis://:pw-not-shown@127.0.0.1:{port}/0")
    assert fails(lines) == [
        f"[FAIL] session store: Redis redis://:***@127.0.0.1:{port}/0 (redis.url): connection "
        f"refused (nothing listens there); {REDIS_FIX}"]
    assert "pw-not-shown" not in "\n".join(lines)


def test_idp_down(tmp_path, gw_ports, redis_server: RedisServer) -> None:
    """Nothing at the issuer: the discovery URL, the cause, what to check; the checks that
    need discovery are not run (no cascade of failures)."""
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    lines = doctor(tmp_path, gw_ports[0], issuer, redis_server.url)
    assert fails(lines) == [
        f"[FAIL] IdP discovery: {issuer}/.well-known/openid-configuration (oidc.issuer): "
        "connection refused (nothing listens there); is the IdP running and reachable from "
        "here? check oidc.issuer"]
    assert lines[-1] == "1 check(s) failed"


def test_localhost_is_not_127_0_0_1(tmp_path, gw_ports, idp: OidcProviderProcess,
                                    redis_server: RedisServer) -> None:
    """The issuer spelled with localhost while the IdP says 127.0.0.1: the exact value to set."""
    issuer = idp.issuer.replace("127.0.0.1", "localhost")
    lines = doctor(tmp_path, gw_ports[0], issuer, redis_server.url)
    assert fails(lines) == [
        f"[FAIL] IdP discovery: {issuer}/.well-known/openid-configuration (oidc.issuer): the "
        f"IdP calls itself '{idp.issuer}', the config says '{issuer}'; set oidc.issuer = "
        f"'{idp.issuer}' exactly (localhost and 127.0.0.1 differ, and so does a trailing slash)"]


@pytest.fixture(scope="module")
def dev_idp(tmp_path_factory) -> Any:
    """`bffgate demo --idp-only` (the built-in dev IdP, no PAR, a login page answered with
    200) and the serve config it writes."""
    port, gw_port = free_port(), free_port()
    workdir = tmp_path_factory.mktemp("dev-idp")
    config = workdir / "dev-idp.toml"
    idp = ChildProcess("bffgate demo --idp-only", [
        sys.executable, "-m", "bffgate", "demo", "--idp-only", "--port", str(port),
        "--redirect-uri", f"http://localhost:{gw_port}/bff/callback",
        "--write-config", str(config)], workdir / "dev-idp.log", env=child_env()).start()
    try:
        idp.wait_ready(log_has(idp, "dev identity provider is running"))
        assert config.exists(), "the dev IdP did not write its config"
        yield config, gw_port
    finally:
        idp.stop()


def _doctor_env(config: Path, **env: str) -> list[str]:
    out = subprocess.run([sys.executable, "-m", "bffgate", "doctor", "--config", str(config)],
                         capture_output=True, text=True, timeout=60, env=child_env(env))
    assert "Traceback" not in out.stderr, out.stderr
    return out.stdout.splitlines()


def test_dev_idp_redirect_uri_told_apart_without_par(dev_idp) -> None:
    """An IdP without PAR that shows its login page (200): doctor compares with a made-up
    redirect URI, which the dev IdP refuses (400), so ours is known to be registered."""
    config, gw_port = dev_idp
    lines = _doctor_env(config)
    assert lines[-1] == "all checks passed", lines
    assert (f"[ok] redirect URI http://localhost:{gw_port}/bff/callback: accepted by the IdP "
            "(HTTP 200, while a made-up redirect URI is refused)") in lines


def test_dev_idp_wrong_redirect_uri(dev_idp) -> None:
    """The gateway moved to another port: the dev IdP's error page is quoted."""
    config, _ = dev_idp
    other = free_port()
    lines = _doctor_env(config, BFFGATE_SERVER__PUBLIC_URL=f"http://localhost:{other}")
    found = fails(lines)
    uri = f"http://localhost:{other}/bff/callback"
    assert len(found) == 1, lines
    assert found[0].startswith(f"[FAIL] redirect URI {uri}: ")
    assert "the IdP refused the authorization request (HTTP 400: " in found[0]
    assert "redirect_uri is not registered" in found[0]
    assert found[0].endswith(f"; register exactly {uri} as a redirect URI of client "
                             "'bffgate-dev' at the IdP, or fix server.public_url / "
                             "oidc.redirect_path")
