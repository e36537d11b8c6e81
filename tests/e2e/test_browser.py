"""E2E with a real browser: Debian's Chromium (Playwright) against ``bffgate serve``, the
real oidc-provider and the echo upstream.

The gateway is served as http://localhost:<port> and the OP as http://127.0.0.1:<port>:
different sites, so what SameSite=Strict (session cookie) and SameSite=Lax (login-binding
cookie) really do on the IdP's redirect back to the callback is exercised, as are the
browser's own Origin header, HttpOnly and the __Host- prefix rules.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support.browser import RECORDED
from support.chromium import ChromiumSession
from support.e2e import CLIENT_ID, CLIENT_SECRET, read_login_verifier, read_session_tokens
from support.secrets_scan import remember
from support.upstream import header_values

pytestmark = pytest.mark.e2e

SESSION_COOKIE = "__Host-bffgate"
LOGIN_COOKIE = "__Host-bffgate-login"
CSRF = {"X-CSRF": "1"}


@pytest.fixture
async def chromium(gateway: Any) -> AsyncIterator[ChromiumSession]:
    async with ChromiumSession(record_origins=[gateway.url]) as session:
        yield session


async def browser_login(chromium: ChromiumSession, gateway: Any, idp: Any, redis_url: str,
                        return_url: str = "/public/app", user: str = "alice") -> None:
    """Open /bff/login in the browser, sign in on the OP's own pages, land on return_url.
    Feeds the code_verifier, the authorization code and the session cookie (and through it
    the tokens) to the secret scan."""
    page = chromium.page
    authorize: list[str] = []
    callbacks: list[str] = []

    def on_request(request: Any) -> None:
        url = request.url
        if url.startswith(idp.issuer + "/auth?"):
            authorize.append(url)
        elif url.startswith(gateway.url + "/bff/callback"):
            callbacks.append(url)

    page.on("request", on_request)
    try:
        await page.goto(f"{gateway.url}/bff/login?returnUrl={return_url}")
        assert page.url.startswith(idp.issuer + "/interaction/"), chromium.describe()
        # While the OP shows its login page, the login record is in Redis: open it for the scan.
        assert authorize, chromium.describe()
        state = parse_qs(urlsplit(authorize[0]).query)["state"][0]
        binding = await chromium.cookie(gateway.url, LOGIN_COOKIE)
        assert binding is not None, "no login-binding cookie in the browser"
        assert binding["httpOnly"] and binding["secure"] and binding["sameSite"] == "Lax"
        read_login_verifier(redis_url, state, binding["value"])

        for _ in range(4):  # login page, then (if the OP asks) the consent page
            if page.url.startswith(gateway.url):
                break
            login_field = page.locator('input[name="login"]')
            if await login_field.count():
                await login_field.fill(user)
                await page.locator('input[name="password"]').fill("any-password")
            elif not await page.locator('input[name="prompt"][value="consent"]').count():
                pytest.fail(f"unexpected OP page\n{chromium.describe()}\n{await page.content()}")
            async with page.expect_navigation():
                await page.locator('button[type="submit"]').first.click()
    finally:
        page.remove_listener("request", on_request)

    assert page.url == gateway.url + return_url, chromium.describe()
    assert callbacks, chromium.describe()
    remember("authorization_code", parse_qs(urlsplit(callbacks[0]).query).get("code", [""])[0])
    cookie = await chromium.cookie(gateway.url, SESSION_COOKIE)
    assert cookie is not None, f"no session cookie after the callback\n{chromium.describe()}"
    remember("session_cookie", cookie["value"])
    read_session_tokens(redis_url, cookie["value"])


async def test_spa_flow_in_chromium(chromium: ChromiumSession, gateway: Any, idp: Any,
                                    upstream: Any, redis_server: Any) -> None:
    """Login through the OP's pages → SPA calls with fetch() → HttpOnly cookie → logout."""
    page = chromium.page
    await browser_login(chromium, gateway, idp, redis_server.url)
    # The cross-site callback worked: the Lax login-binding cookie came back, the Strict
    # session cookie was set, and the browser landed on the return URL (an echo page).
    landing = json.loads(await page.locator("body").inner_text())
    assert landing["path"] == "/public/app"
    assert header_values(landing, "cookie") == []  # the gateway never forwards its cookies

    # The SPA's view: the session cookie is HttpOnly (invisible to JS), nothing else is set
    # (upstream cookies are dropped by the gateway).
    assert await page.evaluate("document.cookie") == ""
    jar = await chromium.context.cookies()
    session = [c for c in jar if c["name"] == SESSION_COOKIE]
    assert len(session) == 1, jar
    cookie = session[0]
    assert cookie["domain"] == "localhost"  # host-only (no Domain attribute)
    assert cookie["path"] == "/"
    assert cookie["httpOnly"] is True
    assert cookie["secure"] is True
    assert cookie["sameSite"] == "Strict"
    assert cookie["value"].startswith("v1.")
    tokens = read_session_tokens(redis_server.url, cookie["value"])["tokens"]

    user = await chromium.fetch("GET", "/bff/user", CSRF)
    assert user["status"] == 200, user
    body = json.loads(user["text"])
    assert body["sub"] == "alice"
    assert body["claims"]["email"] == "alice@example.test"
    assert body["logout_url"].startswith("/bff/logout?sid=")
    for token in (tokens["at"], tokens.get("rt"), tokens.get("it")):
        if token:
            assert token not in user["text"]

    got = await chromium.fetch("GET", "/api/x?q=1", CSRF)
    assert got["status"] == 200, got
    echo = json.loads(got["text"])
    assert echo["method"] == "GET" and echo["path"] == "/api/x" and echo["query"] == "q=1"
    assert header_values(echo, "authorization") == ["<present>"]
    assert header_values(echo, "cookie") == []
    assert header_values(echo, "x-csrf") == []
    seen = upstream.last_for("/api/x")
    assert header_values(seen, "authorization") == [f"Bearer {tokens['at']}"]
    assert "set-cookie" not in got["headers"]

    # A POST carries the browser's own Origin header (Fetch: every non-GET/HEAD request
    # does), which the gateway checks against server.public_url and passes on unchanged:
    # exactly one, the gateway's origin.
    posted = await chromium.fetch("POST", "/api/x", {**CSRF, "Content-Type": "application/json"},
                                  json.dumps({"n": 1}))
    assert posted["status"] == 200, posted
    assert json.loads(posted["text"])["method"] == "POST"
    assert header_values(upstream.last_for("/api/x"), "origin") == [gateway.url]

    no_csrf = await chromium.fetch("GET", "/api/x")
    assert no_csrf["status"] == 401, no_csrf
    assert no_csrf["headers"]["content-type"] == "application/problem+json"
    assert (await chromium.fetch("GET", "/bff/user"))["status"] == 401

    # Logout: a same-origin navigation to logout_url → the OP's end-session page.
    async with page.expect_navigation():
        await page.evaluate("url => window.location.assign(url)", body["logout_url"])
    assert page.url.startswith(idp.issuer) or page.url.startswith(gateway.url), page.url
    assert await chromium.cookie(gateway.url, SESSION_COOKIE) is None  # cleared
    if page.url.startswith(idp.issuer):
        confirm = page.locator('button[name="logout"][value="yes"]')
        if await confirm.count():  # oidc-provider asks "Do you want to sign-out?"
            async with page.expect_navigation():
                await confirm.click()
    if not page.url.startswith(gateway.url):
        await page.goto(gateway.url + "/public/after-logout")
    assert page.url.startswith(gateway.url + "/"), chromium.describe()

    after = await chromium.fetch("GET", "/bff/user", CSRF)
    assert after["status"] == 401, after
    assert json.loads(after["text"])["login_url"].startswith("/bff/login?returnUrl=")
    # The old cookie is dead on the server too, and the grant was revoked at the OP.
    # (Chromium's CDP refuses to plant a __Host- cookie back, so replay it over plain HTTP.)
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        replay = await http.get(gateway.url + "/bff/user", headers={
            **CSRF, "cookie": f"{SESSION_COOKIE}={cookie['value']}"})
    assert replay.status_code == 401, replay.text
    assert idp.introspect(tokens["at"], CLIENT_ID, CLIENT_SECRET)["active"] is False
    assert not chromium.page_errors, chromium.describe()
    assert not chromium.blocked, chromium.describe()  # the OP's pages load nothing off-host

    # What this real browser received from the gateway is in the secret scan's haystack.
    await chromium.flush()
    seen = [r for r in RECORDED if r[0].startswith(gateway.url)]
    assert any(r[0].endswith("/bff/user") and r[1] == 200 and b'"alice"' in r[3] for r in seen)
    assert any(k == "set-cookie" and v.startswith(SESSION_COOKIE + "=v1.")
               for r in seen for k, v in r[2])


async def open_cross_site_page(chromium: ChromiumSession, idp: Any, links: dict[str, str]) -> None:
    """Show a page of ANOTHER site (http://127.0.0.1:<OP port>, fulfilled by the browser's
    router, never served by the OP) with the given links, by element id."""
    url = f"http://127.0.0.1:{idp.port}/__cross-site-test"
    html = "<!doctype html>" + "".join(f'<a id="{i}" href="{h}">{i}</a>' for i, h in links.items())

    async def serve(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/html", body=html)

    await chromium.context.route(url, serve)
    await chromium.page.goto(url)


async def cookie_headers_sent(chromium: ChromiumSession, gateway: Any, click: str) -> dict[str, str]:
    """Click the link ``click`` and return {url: Cookie header} of the requests to the gateway."""
    page = chromium.page
    sent: dict[str, str] = {}

    async def on_request(request: Any) -> None:
        if request.url.startswith(gateway.url):
            sent[request.url] = (await request.all_headers()).get("cookie", "")

    page.on("request", on_request)
    try:
        async with page.expect_navigation():
            await page.locator(f"#{click}").click()
    finally:
        page.remove_listener("request", on_request)
    assert sent, chromium.describe()
    return sent


async def test_cross_site_navigation_carries_no_session_cookie(
        chromium: ChromiumSession, gateway: Any, idp: Any, redis_server: Any) -> None:
    """SameSite=Strict for real: a top-level link from another site reaches the gateway
    without the session cookie; back on the gateway's own origin the session works."""
    await browser_login(chromium, gateway, idp, redis_server.url)
    await open_cross_site_page(chromium, idp, {"pub": f"{gateway.url}/public/cross-site"})
    sent = await cookie_headers_sent(chromium, gateway, "pub")
    for url, cookie_header in sent.items():
        assert f"{SESSION_COOKIE}=" not in cookie_header, (url, cookie_header)
    landing = json.loads(await chromium.page.locator("body").inner_text())
    assert landing["path"] == "/public/cross-site"

    await chromium.page.goto(gateway.url + "/public/back")  # a same-site navigation
    user = await chromium.fetch("GET", "/bff/user", CSRF)
    assert user["status"] == 200, user


async def test_cross_site_logout_link_does_not_end_the_session(
        chromium: ChromiumSession, gateway: Any, idp: Any, redis_server: Any) -> None:
    """design.md: logout needs the session's logout id "so a cross-site link can't log users
    out". A link on another site to the real logout URL must leave the session alone."""
    await browser_login(chromium, gateway, idp, redis_server.url)
    user = await chromium.fetch("GET", "/bff/user", CSRF)
    assert user["status"] == 200, user
    cookie = await chromium.cookie(gateway.url, SESSION_COOKIE)
    assert cookie is not None
    logout_url = gateway.url + json.loads(user["text"])["logout_url"]

    responses: list[str] = []

    async def on_response(response: Any) -> None:
        if response.url.startswith(gateway.url + "/bff/logout"):
            headers = await response.headers_array()
            responses.append(f"{response.status} {[(h['name'], h['value']) for h in headers]}")

    chromium.page.on("response", on_response)
    await open_cross_site_page(chromium, idp, {"go": logout_url})
    sent = await cookie_headers_sent(chromium, gateway, "go")
    assert all(f"{SESSION_COOKIE}=" not in c for c in sent.values()), sent

    await chromium.page.goto(gateway.url + "/public/back")
    again = await chromium.fetch("GET", "/bff/user", CSRF)
    # Diagnostics: does the server-side session survive (only the browser's cookie gone)?
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        replay = await http.get(gateway.url + "/bff/user", headers={
            **CSRF, "cookie": f"{SESSION_COOKIE}={cookie['value']}"})
    assert again["status"] == 200, (
        f"a cross-site link to {logout_url} logged the browser out: /bff/user -> "
        f"{again['status']}; browser cookie now "
        f"{await chromium.cookie(gateway.url, SESSION_COOKIE)}; the old cookie replayed over "
        f"HTTP -> {replay.status_code} (server-side session alive: {replay.status_code == 200});"
        f" gateway answered the cookie-less logout with: {responses}")
