"""E2E DPoP (RFC 9449, oidc.dpop = true): the real IdP binds the session's tokens to the
session's key (with and without server nonces); the upstream receives ``Authorization: DPoP``
with a proof it verifies, for a key whose thumbprint is the token's cnf.jkt at introspection;
a refresh is proved with the same key and keeps the binding."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from support.browser import Browser
from support.dpop_upstream import DpopIdp, ProofVerifier, dpop_request
from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY, client_meta, login, read_session_tokens
from support.gateway import ADMIN_TOKEN, GatewayProcess, gateway_config, new_ports
from support.redis import RedisServer
from support.upstream import EchoUpstream

pytestmark = pytest.mark.e2e

TOKEN_TTL = 10  # seconds: the refresh test waits for the refresh point


class NonceUpstream(EchoUpstream):
    """A resource server that wants its own DPoP nonce (RFC 9449 9) on /nonce-api: a proof
    without it gets 401 use_dpop_nonce with a DPoP-Nonce header; every answer carries it."""

    NONCE = "upstream-nonce-1"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or "/nonce-api" not in scope["path"]:
            await super().app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        record = {"method": scope["method"], "path": scope["path"],
                  "headers": [[k, v] for k, v in headers.items()]}
        self.seen.append(record)
        proof = headers.get("dpop", "")
        ok = bool(proof) and _claims(proof).get("nonce") == self.NONCE
        status = 200 if ok else 401
        extra = [] if ok else [(b"www-authenticate", b'DPoP error="use_dpop_nonce"')]
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"dpop-nonce", self.NONCE.encode()), *extra]})
        await send({"type": "http.response.body", "body": b"{}"})


def _claims(proof: str) -> dict[str, Any]:
    import base64

    seg = proof.split(".")[1]
    doc: dict[str, Any] = json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))
    return doc


@pytest.fixture(scope="module")
def upstream() -> Iterator[NonceUpstream]:
    up = NonceUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="module", params=[False, True], ids=["no-nonce", "nonce"])
def stack(request: pytest.FixtureRequest, redis_server: RedisServer,
          upstream: NonceUpstream) -> Iterator[tuple[GatewayProcess, DpopIdp]]:
    port, admin = new_ports()
    # dpop_bound_access_tokens: the OP refuses this client any token without a proof
    meta = dict(client_meta(port), dpop_bound_access_tokens=True)
    with DpopIdp([meta], access_token_ttl=TOKEN_TTL, require_nonce=request.param) as op:
        config = gateway_config(port=port, admin_port=admin, issuer=op.issuer,
                                client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                redis_url=redis_server.url, upstream=upstream.url,
                                cookie_key=COOKIE_KEY, oidc={"dpop": True},
                                redis={"key_prefix": f"dpop{port}:"})
        gw = GatewayProcess(config).start()
        try:
            yield gw, op
        finally:
            gw.terminate()


def _check_call(upstream: EchoUpstream, op: DpopIdp, verifier: ProofVerifier, path: str,
                method: str, jkt: str) -> str:
    seen = upstream.last_for(path)
    token, proof = dpop_request(seen)
    checked = verifier.verify(proof, method=method, url=upstream.url + seen["path"],
                              access_token=token)
    assert checked.jkt == jkt
    intro = op.introspect(token, CLIENT_ID, CLIENT_SECRET)
    assert intro["active"] is True and intro["sub"] == "alice"
    assert intro["token_type"] == "DPoP"
    assert intro["cnf"]["jkt"] == checked.jkt  # the token is bound to the proof's key
    return token


async def test_dpop_bound_tokens_proxied_call_and_refresh(stack, redis_server, upstream,
                                                          idp_client) -> None:
    gw, op = stack
    browser = Browser(gw.url)
    try:
        resp = await login(browser, idp_client, return_url="/app")
        assert resp.status_code == 302, resp.text
        cookie = browser.cookie("__Host-bffgate")
        stored = read_session_tokens(redis_server.url, cookie, prefix=f"dpop{gw.port}:")
        dk = stored["tokens"]["dk"]  # read_session_tokens registers it with the secret scan
        assert stored["tokens"]["tt"] == "DPoP"
        assert dk not in json.dumps(stored["record"])  # sealed: not in the plain part
        from bffgate.oidc.dpop import DpopKey

        jkt = DpopKey.from_secret(dk).thumbprint
        verifier = ProofVerifier()

        got = await browser.api("GET", "/api/orders/42", params={"x": "1"})
        assert got.status_code == 200, got.text
        first = _check_call(upstream, op, verifier, "/api/orders/42", "GET", jkt)
        assert "dpop" not in {k.lower() for k in got.headers}
        posted = await browser.api("POST", "/api/orders", content=b"{}")
        assert posted.status_code == 200, posted.text
        _check_call(upstream, op, verifier, "/api/orders", "POST", jkt)

        # After the refresh point, the next call refreshes (proved with the same key: the
        # OP refuses another) and the new token is bound to the same key.
        await asyncio.sleep(TOKEN_TTL - 1)
        again = await browser.api("GET", "/api/after-refresh")
        assert again.status_code == 200, again.text
        second = _check_call(upstream, op, verifier, "/api/after-refresh", "GET", jkt)
        assert second != first
        refreshed = read_session_tokens(redis_server.url, cookie, prefix=f"dpop{gw.port}:")
        assert refreshed["tokens"]["dk"] == dk
        assert gw.audit("session.refreshed")
        stats = await idp_client.get(op.issuer + "/test/stats")
        refreshes = [t for t in stats.json()["token_requests"]
                     if t["grant_type"] == "refresh_token"]
        assert refreshes and refreshes[-1]["status"] == 200
        # Logout revokes the DPoP-bound refresh token at the IdP; the bound token is dead.
        user = (await browser.api("GET", "/bff/user")).json()
        out = await browser.get(user["logout_url"])
        assert out.status_code == 302
        rt_hash = hashlib.sha256(refreshed["tokens"]["rt"].encode()).hexdigest()
        assert [r["status"] for r in op.stats()["revocations"]
                if r["token_sha256"] == rt_hash] == [200]
        assert op.introspect(second, CLIENT_ID, CLIENT_SECRET)["active"] is False
        if op.require_nonce:
            # the first token request was told use_dpop_nonce, then retried with the nonce
            codes = [t["status"] for t in stats.json()["token_requests"]
                     if t["grant_type"] == "authorization_code"]
            assert codes[:2] == [400, 200], codes
            metrics = await idp_client.get(gw.admin_url + "/metrics",
                                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
            assert "bffgate_dpop_nonce_retries_total 1.0" in metrics.text
    finally:
        await browser.aclose()


async def test_upstream_nonce_is_used_on_the_next_request(stack, upstream, idp_client) -> None:
    """An upstream's DPoP-Nonce is kept for that upstream: its 401 use_dpop_nonce reaches
    the browser (the request is not replayed), the next request's proof carries the nonce."""
    gw, _op = stack
    browser = Browser(gw.url)
    try:
        assert (await login(browser, idp_client)).status_code == 302
        # whether this first call already has the nonce depends on an earlier test's
        # calls in this module (the nonce is the gateway's, per upstream): either way ...
        await browser.api("GET", "/api/nonce-api/1")
        # ... from now on every proof to this upstream carries it
        got = await browser.api("GET", "/api/nonce-api/2")
        assert got.status_code == 200, got.text
        token, proof = dpop_request(upstream.last_for("/nonce-api/2"))
        checked = ProofVerifier().verify(proof, method="GET", url=upstream.url + "/api/nonce-api/2",
                                         access_token=token, nonce=NonceUpstream.NONCE)
        assert checked.claims["nonce"] == NonceUpstream.NONCE
    finally:
        await browser.aclose()
