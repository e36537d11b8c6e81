"""Smoke test of the test OpenID provider itself (tests/idp) and its Python helpers."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from support.idp import (
    OidcProviderProcess,
    complete_idp_login,
    complete_idp_logout,
    free_port,
)

pytestmark = pytest.mark.e2e

CLIENT_ID = "smoke-client"
CLIENT_SECRET = "smoke-secret"
REDIRECT_URI = "http://localhost:9/cb"
SCOPE = "openid profile email offline_access"


class _BackchannelReceiver(BaseHTTPRequestHandler):
    received: list[dict[str, list[str]]]

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length).decode()
        self.server.received.append(parse_qs(body))  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def backchannel_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _BackchannelReceiver)
    server.received = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture
def idp(backchannel_server: ThreadingHTTPServer) -> Iterator[OidcProviderProcess]:
    bc_port = backchannel_server.server_address[1]
    client = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "redirect_uris": [REDIRECT_URI],
        "post_logout_redirect_uris": ["http://localhost:9/"],
        "token_endpoint_auth_method": "client_secret_basic",
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "backchannel_logout_uri": f"http://127.0.0.1:{bc_port}/backchannel-logout",
        "backchannel_logout_session_required": True,
    }
    with OidcProviderProcess([client]) as op:
        yield op


def _jwt_payload(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return data


async def test_login_code_exchange_refresh_rotation_and_introspection(
    idp: OidcProviderProcess, backchannel_server: ThreadingHTTPServer
) -> None:
    meta = idp.metadata()
    assert meta["issuer"] == idp.issuer
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["authorization_response_iss_parameter_supported"] is True

    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    state, nonce = secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    authorize_url = (
        meta["authorization_endpoint"]
        + "?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": state,
                "nonce": nonce,
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
    )

    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as browser:
        callback = await complete_idp_login(browser, authorize_url, REDIRECT_URI, login="alice")
        assert callback.startswith(REDIRECT_URI)
        params = parse_qs(urlsplit(callback).query)
        assert "error" not in params, params
        assert params["state"] == [state]
        assert params["iss"] == [idp.issuer]
        code = params["code"][0]

        # A second authorization in the same cookie jar reuses the OP session: no form.
        second = await complete_idp_login(
            browser, authorize_url.replace(state, "second-state"), REDIRECT_URI
        )
        assert "code=" in second

    idp.reset_stats()
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        resp = await http.post(
            meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            auth=(CLIENT_ID, CLIENT_SECRET),
        )
        assert resp.status_code == 200, resp.text
        tokens = resp.json()
        assert tokens["access_token"]
        assert tokens["refresh_token"]
        assert tokens["id_token"]
        assert tokens["expires_in"] <= 300
        claims = _jwt_payload(tokens["id_token"])
        assert claims["iss"] == idp.issuer
        assert claims["aud"] == CLIENT_ID
        assert claims["sub"] == "alice"
        assert claims["nonce"] == nonce
        assert claims["name"] == "alice Example"
        assert claims["email"] == "alice@example.test"
        assert claims["sid"]

        async def refresh(refresh_token: str) -> httpx.Response:
            return await http.post(
                meta["token_endpoint"],
                data={"grant_type": "refresh_token", "refresh_token": refresh_token},
                auth=(CLIENT_ID, CLIENT_SECRET),
            )

        first = await refresh(tokens["refresh_token"])
        assert first.status_code == 200, first.text
        rotated = first.json()
        assert rotated["refresh_token"] != tokens["refresh_token"]
        assert rotated["access_token"] != tokens["access_token"]

        second_refresh = await refresh(rotated["refresh_token"])
        assert second_refresh.status_code == 200, second_refresh.text
        latest = second_refresh.json()

        # Rotation: the first refresh token is spent. (Reusing it also burns the grant.)
        reused = await refresh(tokens["refresh_token"])
        assert reused.status_code == 400
        assert reused.json()["error"] == "invalid_grant"

    stats = idp.stats()
    assert [r["grant_type"] for r in stats["token_requests"]] == [
        "authorization_code",
        "refresh_token",
        "refresh_token",
        "refresh_token",
    ]
    assert {r["client_auth"] for r in stats["token_requests"]} == {"basic"}
    assert stats["refresh_grants"] == 3
    assert stats["refresh_success"] == 2

    # Reuse detection revoked the whole grant, including the latest access token.
    assert idp.introspect(latest["access_token"], CLIENT_ID, CLIENT_SECRET)["active"] is False

    idp.reset_stats()
    assert idp.stats() == {"token_requests": [], "refresh_grants": 0, "refresh_success": 0,
                           "revocations": [], "token_exchanges": []}

    # Back-channel logout reaches a receiver on 127.0.0.1 (loopback allowed for this OP).
    sent = idp.send_backchannel_logout("alice", sid=claims["sid"])
    assert sent == [{"client_id": CLIENT_ID, "ok": True}]
    (form,) = backchannel_server.received  # type: ignore[attr-defined]
    logout_claims = _jwt_payload(form["logout_token"][0])
    assert logout_claims["sub"] == "alice"
    assert logout_claims["sid"] == claims["sid"]
    assert "http://schemas.openid.net/event/backchannel-logout" in logout_claims["events"]


async def test_introspection_of_fresh_access_token_and_restart(idp: OidcProviderProcess) -> None:
    meta = idp.metadata()
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    authorize_url = (
        meta["authorization_endpoint"]
        + "?"
        + urlencode(
            {
                "response_type": "code",
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "scope": SCOPE,
                "state": "s",
                "code_challenge": challenge,
                "code_challenge_method": "S256",
            }
        )
    )
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        callback = await complete_idp_login(http, authorize_url, REDIRECT_URI, login="bob")
        code = parse_qs(urlsplit(callback).query)["code"][0]
        resp = await http.post(
            meta["token_endpoint"],
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
                "client_id": CLIENT_ID,
                "client_secret": CLIENT_SECRET,
            },
        )
        assert resp.status_code == 200, resp.text
        tokens = resp.json()
    assert idp.stats()["token_requests"][-1]["client_auth"] == "post"

    info = idp.introspect(tokens["access_token"], CLIENT_ID, CLIENT_SECRET)
    assert info["active"] is True
    assert info["sub"] == "bob"
    assert info["client_id"] == CLIENT_ID
    assert {"openid", "profile", "email"} <= set(info["scope"].split())

    # Without PKCE the OP refuses the authorization request.
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as http:
        no_pkce = authorize_url.split("&code_challenge=")[0]
        resp = await http.get(no_pkce, follow_redirects=False)
        assert resp.status_code in (302, 303)
        assert "error=invalid_request" in resp.headers["location"]

    # A restart keeps the port and forgets every token.
    port = idp.port
    idp.restart()
    assert idp.port == port
    assert idp.introspect(tokens["access_token"], CLIENT_ID, CLIENT_SECRET)["active"] is False


async def test_rp_initiated_logout_sends_backchannel_logout(
    idp: OidcProviderProcess, backchannel_server: ThreadingHTTPServer
) -> None:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    query = {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid",
        "state": "s",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as browser:
        await complete_idp_login(
            browser, idp.endpoint("authorization") + "?" + urlencode(query), REDIRECT_URI
        )
        end_session = (
            idp.endpoint("end_session")
            + "?"
            + urlencode({"client_id": CLIENT_ID, "post_logout_redirect_uri": "http://localhost:9/"})
        )
        final = await complete_idp_logout(browser, end_session, "http://localhost:9/")
    assert final == "http://localhost:9/"
    (form,) = backchannel_server.received  # type: ignore[attr-defined]
    logout_claims = _jwt_payload(form["logout_token"][0])
    assert logout_claims["sub"] == "alice"
    assert logout_claims["sid"]
