"""E2E: client authentication with private_key_jwt against the real oidc-provider, one
gateway process per key (RSA as PEM, EC P-256 as a JWK with its own kid, Ed25519 as PEM):
a full login, a refresh and a logout, each authenticated with a signed assertion the IdP
verified against the public key it has registered. The IdP's own records say which
algorithm and kid it saw. And a bad key never gets as far as a token call: `serve` refuses it
at startup, naming oidc.private_key."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from joserfc.jwk import ECKey, OKPKey, RSAKey

from support.browser import Browser
from support.e2e import COOKIE_KEY, login, read_session_tokens
from support.gateway import GatewayProcess, child_env, gateway_config, write_toml
from support.idp import OidcProviderProcess, free_port
from support.redis import RedisServer
from support.secrets_scan import remember
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e
AT_TTL = 4  # seconds: the gateway refreshes after half of it (refresh_ahead = 2)


@dataclass
class ClientKeyCase:
    name: str
    client_id: str
    private_text: str  # what oidc.private_key holds
    public_jwk: dict[str, Any]  # what the IdP has registered
    alg: str  # what the gateway must sign with (oidc-provider lists RS256, PS256, ES256, ...)
    kid: str  # what the assertion header must name

    def meta(self, port: int) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "redirect_uris": [f"http://localhost:{port}/bff/callback"],
            "post_logout_redirect_uris": [f"http://localhost:{port}/"],
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [self.public_jwk]},
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
        }


def _pem(key: Any) -> str:
    return key.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                             ser.NoEncryption()).decode()


def _cases() -> list[ClientKeyCase]:
    rsa_key = RSAKey.import_key(rsa.generate_private_key(65537, 2048))
    ec_key = ECKey.import_key(ec.generate_private_key(ec.SECP256R1()))
    ed_key = OKPKey.import_key(ed25519.Ed25519PrivateKey.generate())
    ec_jwk = {**ec_key.as_dict(private=True), "kid": "ec-registered-1"}
    cases = [
        ClientKeyCase("rsa-pem", "bff-pkjwt-rsa", rsa_key.as_pem(private=True).decode(),
                      {**rsa_key.as_dict(private=False), "kid": rsa_key.thumbprint()},
                      "RS256", rsa_key.thumbprint()),
        ClientKeyCase("ec-jwk", "bff-pkjwt-ec", json.dumps(ec_jwk),
                      {**ec_key.as_dict(private=False), "kid": "ec-registered-1"},
                      "ES256", "ec-registered-1"),
        ClientKeyCase("ed25519-pem", "bff-pkjwt-ed", ed_key.as_pem(private=True).decode(),
                      {**ed_key.as_dict(private=False), "kid": ed_key.thumbprint()},
                      "Ed25519", ed_key.thumbprint()),
    ]
    for case, key in zip(cases, (rsa_key, ec_key, ed_key), strict=True):
        remember("private_key", case.private_text)
        remember("private_key.d", str(key.as_dict(private=True)["d"]))
    return cases


CASES = _cases()


@pytest.fixture(scope="module")
def ports() -> dict[str, tuple[int, int]]:
    return {c.name: (free_port(), free_port()) for c in CASES}


@pytest.fixture(scope="module")
def op(ports: dict[str, tuple[int, int]]) -> Iterator[OidcProviderProcess]:
    clients = [c.meta(ports[c.name][0]) for c in CASES]
    with OidcProviderProcess(clients, access_token_ttl=AT_TTL, rotate_refresh_tokens=True) as p:
        yield p


def _start_gateway(case: ClientKeyCase, ports: tuple[int, int], op: OidcProviderProcess,
                   redis_server: RedisServer, upstream: EchoUpstream,
                   tmp_path: Path) -> GatewayProcess:
    key_file = tmp_path / f"{case.name}.key"
    key_file.write_text(case.private_text)
    key_file.chmod(0o600)
    config = gateway_config(
        port=ports[0], admin_port=ports[1], issuer=op.issuer, client_id=case.client_id,
        client_secret="", redis_url=redis_server.url, upstream=upstream.url,
        cookie_key=COOKIE_KEY,
        oidc={"client_auth": "private_key_jwt", "private_key": f"file:{key_file}"})
    return GatewayProcess(config).start()


def _mine(records: list[dict[str, Any]], case: ClientKeyCase) -> list[dict[str, Any]]:
    return [r for r in records if r.get("client_id") == case.client_id]


async def _bearer_until_changed(b: Browser, upstream: EchoUpstream, old: str,
                                timeout: float = 3 * AT_TTL) -> str:
    deadline = time.monotonic() + timeout
    n = 0
    while time.monotonic() < deadline:
        n += 1
        r = await b.api("GET", f"/api/pkjwt/{n}")
        assert r.status_code == 200, r.text
        bearer = header_values(upstream.last_for(f"/api/pkjwt/{n}"), "authorization")[0]
        if bearer != f"Bearer {old}":
            return bearer.removeprefix("Bearer ")
        await asyncio.sleep(0.5)
    raise AssertionError("the gateway never refreshed the access token")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_login_refresh_and_logout_authenticate_with_the_key(
        case: ClientKeyCase, op: OidcProviderProcess, ports: dict[str, tuple[int, int]],
        redis_server: RedisServer, upstream: EchoUpstream, tmp_path: Path) -> None:
    gw = _start_gateway(case, ports[case.name], op, redis_server, upstream, tmp_path)
    b = Browser(gw.url)
    try:
        # `bffgate doctor` authenticates the client with the key (a made-up code must get
        # invalid_grant, not invalid_client)
        doctor = subprocess.run([sys.executable, "-m", "bffgate", "doctor", "--config",
                                 str(gw.config_path)], capture_output=True, text=True,
                                timeout=60, env=child_env())
        assert doctor.returncode == 0, doctor.stdout + doctor.stderr
        assert f"authenticated client {case.client_id!r} (private_key_jwt" in doctor.stdout
        op.reset_stats()

        async with httpx.AsyncClient(trust_env=False, timeout=30) as idp_client:
            r = await login(b, idp_client, redis_server.url)
        assert r.status_code == 302, r.text
        user = await b.api("GET", "/bff/user")
        assert user.status_code == 200 and user.json()["sub"] == "alice"

        stats = op.stats()
        code = [t for t in _mine(stats["token_requests"], case)
                if t["grant_type"] == "authorization_code"]
        assert [(t["status"], t["client_auth"], t["assertion"]) for t in code] == [
            (200, "private_key_jwt", {"alg": case.alg, "kid": case.kid})]

        # refresh: the access token lives AT_TTL seconds; the next API call past half of it
        # refreshes, authenticated the same way
        cookie = b.cookie("__Host-bffgate")
        assert cookie
        first = read_session_tokens(redis_server.url, cookie)["tokens"]
        await asyncio.sleep(AT_TTL / 2)
        await _bearer_until_changed(b, upstream, first["at"])
        refreshes = [t for t in _mine(op.stats()["token_requests"], case)
                     if t["grant_type"] == "refresh_token"]
        assert refreshes, "the IdP saw no refresh from this client"
        assert {(t["status"], t["client_auth"], t["assertion"]["alg"], t["assertion"]["kid"])
                for t in refreshes} == {(200, "private_key_jwt", case.alg, case.kid)}

        # logout: the refresh token is revoked at the IdP, again with an assertion
        rt = read_session_tokens(redis_server.url, cookie)["tokens"]["rt"]
        out = await b.get((await b.api("GET", "/bff/user")).json()["logout_url"])
        assert out.status_code == 302
        revoked = _mine(op.stats()["revocations"], case)
        assert [(v["token_sha256"], v["status"], v["client_auth"], v["assertion"]["alg"])
                for v in revoked] == [(hashlib.sha256(rt.encode()).hexdigest(), 200,
                                       "private_key_jwt", case.alg)]
        assert not [e for e in gw.events() if e.get("level") == "error"]
    finally:
        await b.aclose()
        gw.terminate()


def test_serve_refuses_a_bad_key_at_startup_naming_oidc_private_key(
        op: OidcProviderProcess, redis_server: RedisServer, upstream: EchoUpstream,
        tmp_path: Path) -> None:
    """Before: a P-384 key (or a JWK) passed check-config, the gateway started, and the first
    login died with a 500 at the token call. Now neither check-config nor serve accepts it."""
    key_file = tmp_path / "p384.pem"
    key_file.write_text(_pem(ec.generate_private_key(ec.SECP384R1())))
    config = gateway_config(
        port=free_port(), admin_port=free_port(), issuer=op.issuer, client_id="bff-pkjwt-ec",
        client_secret="", redis_url=redis_server.url, upstream=upstream.url,
        cookie_key=COOKIE_KEY,
        oidc={"client_auth": "private_key_jwt", "private_key": f"file:{key_file}"})
    path = tmp_path / "bffgate.toml"
    write_toml(path, config)
    expected = "oidc.private_key: is an EC key on curve secp384r1, which is not supported"
    for command in ("check-config", "serve"):
        done = subprocess.run([sys.executable, "-m", "bffgate", command, "--config", str(path)],
                              capture_output=True, text=True, timeout=60, env=child_env())
        assert done.returncode == 1, (command, done.stdout, done.stderr)
        assert expected in done.stderr, (command, done.stderr)
