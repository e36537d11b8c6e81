"""Integration: login and callback (endpoints/login.py, callback.py) and /bff/* dispatch,
with the whole gateway in-process (support/inprocess.py)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from support.inprocess import CLIENT, PUBLIC, Harness

pytestmark = pytest.mark.integration


async def test_authorization_request_is_built_from_config_only(h: Harness) -> None:
    """Host / X-Forwarded-* and user-supplied OAuth parameters never shape the request."""
    r = await h.browser.get("/bff/login", params={
        "returnUrl": "/", "scope": "openid admin", "prompt": "none", "client_id": "other",
        "redirect_uri": "https://evil.example/cb", "response_type": "token"},
        headers={"host": "evil.example", "x-forwarded-host": "evil.example",
                 "x-forwarded-proto": "http"})
    assert r.status_code == 302
    q = parse_qs(urlsplit(r.headers["location"]).query)
    assert q["redirect_uri"] == [PUBLIC + "/bff/callback"]
    assert q["client_id"] == [CLIENT] and q["response_type"] == ["code"]
    assert q["scope"] == ["openid profile email offline_access"]
    assert "prompt" not in q
    assert q["code_challenge_method"] == ["S256"] and len(q["state"][0]) >= 43

async def test_parallel_logins_in_one_browser_share_one_binding_cookie(h: Harness) -> None:
    """Two tabs start logins: one binding value, and both logins can finish."""
    first = await h.browser.get("/bff/login")
    second = await h.browser.get("/bff/login")
    assert "set-cookie" in first.headers and "set-cookie" in second.headers
    v1 = first.headers["set-cookie"].split(";")[0]
    v2 = second.headers["set-cookie"].split(";")[0]
    assert v1 == v2
    for resp in (first, second):
        cb = await h.browser.get(await h.sign_in_at_idp(resp.headers["location"], "tab"))
        assert cb.status_code == 302, cb.text

async def test_wrong_methods_and_unknown_bff_paths_are_problems(h: Harness) -> None:
    r = await h.browser.post("/bff/callback", data={"code": "c", "state": "s"})
    assert r.status_code == 405 and r.headers["content-type"] == "application/problem+json"
    r = await h.browser.get("/bff/nothing")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
