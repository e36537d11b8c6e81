"""Shared e2e helpers: client registration, the login dance, reading a session's tokens."""

from __future__ import annotations

import json
import secrets
from typing import Any

import httpx

from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.crypto.sealing import open_sealed
from support.browser import Browser
from support.idp import complete_idp_login
from support.secrets_scan import remember

CLIENT_ID = "bff-e2e"
CLIENT_SECRET = "e2e-" + secrets.token_urlsafe(24)
COOKIE_KEY = secrets.token_urlsafe(32)
remember("client_secret", CLIENT_SECRET)
remember("cookie_key", COOKIE_KEY)


def client_meta(gw_port: int, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET,
                auth: str = "client_secret_basic") -> dict[str, Any]:
    return {
        "client_id": client_id, "client_secret": secret,
        "redirect_uris": [f"http://localhost:{gw_port}/bff/callback"],
        "post_logout_redirect_uris": [f"http://localhost:{gw_port}/"],
        "token_endpoint_auth_method": auth,
        "backchannel_logout_uri": f"http://localhost:{gw_port}/bff/backchannel",
        "backchannel_logout_session_required": True,
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
    }


def read_session_tokens(redis_url: str, cookie_value: str, prefix: str = "bffgate:") -> dict[str, Any]:
    """Open the session record in Redis with the cookie (as only the gateway could), for
    assertions and for the secret scan."""
    import redis

    handle = CookieCodec([COOKIE_KEY]).decode(cookie_value)
    r = redis.Redis.from_url(redis_url)
    try:
        raw = r.get(f"{prefix}s:{{{handle.key}}}")
    finally:
        r.close()
    assert raw is not None, "no session record"
    doc = json.loads(raw.split(b"|", 2)[2])
    tokens = json.loads(open_sealed(handle.secret, doc["sealed"], handle.key.encode()))
    remember("access_token", tokens["at"])
    remember("refresh_token", tokens.get("rt"))
    remember("id_token", tokens.get("it"))
    if tokens.get("dk"):  # oidc.dpop: the session's private key (a JWK) and its private part
        remember("dpop_private_key", tokens["dk"])
        remember("dpop_private_key.d", json.loads(tokens["dk"]).get("d"))
    if doc.get("xt"):  # token = exchange routes: the exchanged tokens, sealed as their own blob
        exchanged = json.loads(open_sealed(handle.secret, doc["xt"], handle.key.encode() + b"/xt"))
        for entry in exchanged.values():
            remember("access_token (exchanged)", entry[0])
    return {"record": doc, "tokens": tokens, "key": handle.key}


def read_login_verifier(redis_url: str, state: str, binding: str) -> str:
    import redis

    r = redis.Redis.from_url(redis_url)
    try:
        raw = r.get(f"bffgate:login:{state}")
    finally:
        r.close()
    assert raw is not None
    doc = json.loads(raw)
    secret = json.loads(open_sealed(binding.encode(), doc["sealed"], state.encode()))
    remember("code_verifier", secret["v"])
    return str(secret["v"])


async def start_login(browser: Browser, return_url: str = "/app") -> str:
    r = await browser.get("/bff/login", params={"returnUrl": return_url})
    assert r.status_code == 302, r.text
    return r.headers["location"]


async def login(browser: Browser, idp_client: httpx.AsyncClient, redis_url: str | None = None,
                return_url: str = "/app", user: str = "alice") -> httpx.Response:
    """The whole dance: /bff/login → OP login forms → /bff/callback. Returns the callback."""
    authorize = await start_login(browser, return_url)
    if redis_url:
        from urllib.parse import parse_qs, urlsplit

        state = parse_qs(urlsplit(authorize).query)["state"][0]
        read_login_verifier(redis_url, state, browser.cookie("__Host-bffgate-login") or "")
    cb = await complete_idp_login(idp_client, authorize, browser.base_url + "/bff/callback",
                                  login=user)
    from urllib.parse import parse_qs, urlsplit

    remember("authorization_code", parse_qs(urlsplit(cb).query).get("code", [""])[0])
    resp = await browser.get(cb)
    cookie = browser.cookie("__Host-bffgate")
    if cookie:
        remember("session_cookie", cookie)
    return resp


