"""E2E for ``bffgate demo``: the one-command first look (gateway + dev IdP + demo API + demo
page) as a real process, driven over plain HTTP and through the demo page in Chromium."""

from __future__ import annotations

import json
import random
import re
import signal
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from playwright.async_api import Locator, Page, ViewportSize, expect

from support.browser import Browser
from support.chromium import ChromiumSession
from support.gateway import ALL_LOGS, child_env
from support.idp import _parse_forms
from support.processes import ChildProcess, log_has
from support.secrets_scan import remember

pytestmark = pytest.mark.e2e

READY = "bffgate demo is running"
PORT_OFFSETS = (0, 1, 2, 3, 10)  # gateway, dev IdP, demo API, demo page, admin
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "demo.png"
SCREENSHOT_VIEWPORT: ViewportSize = {"width": 1200, "height": 760}
STATES = ("loading", "signed-out", "signed-in", "ended", "logged-out")
JWT_LIKE = re.compile(r"eyJ[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{6,}")
SESSION_COOKIE = "__Host-bffgate"


def _ports_free(base: int) -> bool:
    for offset in PORT_OFFSETS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", base + offset))
            except OSError:
                return False
    return True


def _listening(base: int) -> list[int]:
    """The demo ports on which something still accepts connections."""
    busy = []
    for offset in PORT_OFFSETS:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            if sock.connect_ex(("127.0.0.1", base + offset)) == 0:
                busy.append(base + offset)
    return busy


def pick_demo_port() -> int:
    """A base port P with P, P+1, P+2, P+3 and P+10 free on 127.0.0.1 (below the usual
    ephemeral range, so free_port() elsewhere in the suite rarely collides)."""
    for _ in range(200):
        base = random.randrange(15000, 32000)
        if _ports_free(base):
            return base
    raise RuntimeError("no free port block for bffgate demo")


@dataclass
class DemoProcess:
    port: int
    child: ChildProcess

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def idp_url(self) -> str:
        return f"http://127.0.0.1:{self.port + 1}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.port + 10}"

    def log(self) -> str:
        return self.child.log()


def start_demo(log_path: Path) -> DemoProcess:
    env = child_env({"PYTHONUNBUFFERED": "1"})
    last_error = ""
    for _ in range(3):
        port = pick_demo_port()
        child = ChildProcess("bffgate demo",
                             [sys.executable, "-m", "bffgate", "demo", "--port", str(port)],
                             log_path, env=env).start()
        try:
            child.wait_ready(log_has(child, READY), timeout=START_TIMEOUT)
            return DemoProcess(port, child)
        except RuntimeError:
            child.stop(STOP_TIMEOUT)  # (already stopped when it exited or timed out)
            last_error = child.log()
        if "address already in use" not in last_error.lower():
            break  # not a port race: no point retrying
    raise RuntimeError(f"bffgate demo did not start:\n{last_error}")


@pytest.fixture(scope="module")
def demo() -> Iterator[DemoProcess]:
    log_path = Path(tempfile.mkdtemp(prefix="bffgate-demo-")) / "demo.log"
    ALL_LOGS.append(log_path)  # the suite's secret scan reads it
    proc = start_demo(log_path)
    try:
        yield proc
    finally:
        rc = proc.child.stop(STOP_TIMEOUT, signal.SIGINT)  # Ctrl-C, as the banner says
        if rc == -signal.SIGKILL:
            pytest.fail(f"bffgate demo did not exit within {STOP_TIMEOUT:.0f} s of SIGINT:"
                        f"\n{proc.log()[-3000:]}")
        assert rc in (0, -signal.SIGINT, 130), (
            f"bffgate demo exited {rc}:\n{proc.log()[-3000:]}")
        assert "Traceback" not in proc.log(), proc.log()[-3000:]
        assert not _listening(proc.port), "a demo port still accepts connections after exit"


def test_demo_banner_says_not_for_production(demo: DemoProcess) -> None:
    log = demo.log()
    assert "NOT FOR PRODUCTION" in log
    assert f"open http://localhost:{demo.port}/" in log


async def test_demo_plain_http_flow(demo: DemoProcess) -> None:
    """Scripted browser (httpx) through /bff/login → dev IdP sign-in form → callback →
    /bff/user → /api/hello → POST /api/echo → logout → 401."""
    browser = Browser(demo.url)
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=15) as idp:
            anon = await browser.api("GET", "/bff/user")
            assert anon.status_code == 401
            login = await browser.get("/bff/login", params={"returnUrl": "/"})
            assert login.status_code == 302, login.text
            authorize = login.headers["location"]
            assert authorize.startswith(demo.idp_url + "/authorize?")
            query = parse_qs(urlsplit(authorize).query)
            assert query["code_challenge_method"] == ["S256"]
            assert query["redirect_uri"] == [f"{demo.url}/bff/callback"]

            page = await idp.get(authorize)
            assert page.status_code == 200 and "NOT FOR PRODUCTION" in page.text
            forms = [f for f in _parse_forms(page.text) if "username" in f.fields]
            assert len(forms) == 1, page.text
            fields = {**forms[0].fields, "username": "alice", "password": ""}
            signed_in = await idp.post(urljoin(authorize, forms[0].action or ""), data=fields)
            assert signed_in.status_code == 302, signed_in.text
            callback = signed_in.headers["location"]
            assert callback.startswith(f"{demo.url}/bff/callback?")
            cb_query = parse_qs(urlsplit(callback).query)
            assert cb_query["iss"] == [demo.idp_url]
            remember("authorization_code", cb_query["code"][0])

            done = await browser.get(callback)
            assert done.status_code == 302, done.text
            assert done.headers["location"] == "/"
            cookie = browser.cookie(SESSION_COOKIE)
            assert cookie and cookie.startswith("v1.")
            remember("session_cookie", cookie)

            user = await browser.api("GET", "/bff/user")
            assert user.status_code == 200, user.text
            info = user.json()
            assert info["sub"] == "alice"
            assert info["logout_url"].startswith("/bff/logout?sid=")

            hello = await browser.api("GET", "/api/hello")
            assert hello.status_code == 200, hello.text
            assert hello.json()["message"].startswith("Hello ")
            assert hello.json()["token_seen"] is True
            assert "authorization" not in hello.json()["headers"]
            arrived = hello.json()["received"]
            bearer = arrived["authorization"]  # masked: 6 characters and the length
            assert bearer["start"].startswith("eyJ") and len(bearer["start"]) == 6
            assert bearer["length"] > 100
            assert arrived["cookie"] is False and arrived["x_csrf"] is False

            payload = {"greeting": "hi", "n": [1, 2, 3]}
            echo = await browser.api("POST", "/api/echo", json=payload,
                                     headers={"origin": demo.url})
            assert echo.status_code == 200, echo.text
            assert echo.json()["echo"] == payload
            assert echo.json()["method"] == "POST"

            no_csrf = await browser.get("/api/hello")
            assert no_csrf.status_code == 401

            page_resp = await browser.get("/")  # the demo page, proxied to the site app
            assert page_resp.status_code == 200
            assert 'class="login"' in page_resp.text

            out = await browser.get(info["logout_url"])
            assert out.status_code == 302
            end = out.headers["location"]
            assert end.startswith(demo.idp_url + "/end_session?")
            assert browser.cookie(SESSION_COOKIE) is None
            bye = await idp.get(end)
            assert bye.status_code == 302
            assert bye.headers["location"].startswith(demo.url + "/")

            after = await browser.api("GET", "/bff/user")
            assert after.status_code == 401
            replay = await browser.api("GET", "/bff/user",
                                       headers={"cookie": f"{SESSION_COOKIE}={cookie}"})
            assert replay.status_code == 401
    finally:
        await browser.aclose()


@pytest.fixture
async def chromium(demo: DemoProcess) -> AsyncIterator[ChromiumSession]:
    async with ChromiumSession(record_origins=[demo.url], viewport=SCREENSHOT_VIEWPORT) as session:
        yield session


async def sign_in_at_the_idp(page: Page, demo: DemoProcess, button: Locator,
                             chromium: ChromiumSession) -> None:
    async with page.expect_navigation():
        await button.click()
    assert page.url.startswith(demo.idp_url + "/authorize?"), chromium.describe()
    await expect(page.locator("#dev-banner")).to_contain_text("NOT FOR PRODUCTION")
    await page.locator("#username").fill("alice")
    await page.locator("#password").fill("anything")
    async with page.expect_navigation(url=demo.url + "/"):
        await page.locator("#sign-in").click()


async def expect_state(page: Page, state: str, *texts: str) -> str:
    """Exactly one session state is shown, with these texts; returns the page's visible text."""
    await expect(page.locator("body")).to_have_attribute("data-state", state)
    for other in STATES:
        locator = page.locator(f"#state-{other}")
        if other == state:
            await expect(locator).to_be_visible()
        else:
            await expect(locator).to_be_hidden()
    for text in texts:
        await expect(page.locator(f"#state-{state}")).to_contain_text(text)
    visible = await page.locator("body").inner_text()
    assert visible.lower().count("not signed in") <= 1, visible
    await assert_no_token(page)
    return visible


async def assert_no_token(page: Page) -> None:
    """Nothing token-like anywhere in the document, hidden parts (the JSON) included."""
    everything = await page.evaluate("document.documentElement.outerHTML")
    assert not JWT_LIKE.search(everything), JWT_LIKE.findall(everything)


def write_if_changed(png: bytes, path: Path) -> None:
    """docs/demo.png is committed: rewrite it only when the rendering changed."""
    if not path.exists() or path.read_bytes() != png:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png)


async def test_demo_page_explains_itself_in_chromium(
        demo: DemoProcess, chromium: ChromiumSession) -> None:
    """The demo page as a user sees it, state by state: signed out -> signed in -> API call
    (the screenshot in the README) -> session ended elsewhere -> log in again -> logged out."""
    page = chromium.page
    await page.goto(demo.url + "/")
    await expect_state(page, "signed-out", "You are not signed in.", "What Log in will do",
                       "/bff/login")
    await expect(page.locator("#gateway-panel")).to_be_hidden()
    await expect(page.locator("#result")).to_be_hidden()

    await sign_in_at_the_idp(page, demo, page.locator("#state-signed-out button.login"),
                             chromium)
    await expect_state(page, "signed-in", "Signed in as Alice", "alice", "in 8 h")
    cookie = await chromium.cookie(demo.url, SESSION_COOKIE)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    remember("session_cookie", cookie["value"])
    assert await page.evaluate("document.cookie") == ""
    panel = page.locator("#gateway-panel")
    await expect(panel).to_be_visible()
    await expect(page.locator("#check-httponly")).to_contain_text('document.cookie is ""')
    await expect(page.locator("#bearer-evidence")).to_contain_text("Call the API")

    await page.locator("#call-api").click()
    await expect(page.locator("#api-status")).to_have_text("GET /api/hello → 200 OK")
    await expect(page.locator("#api-message")).to_have_text("The API says: Hello Alice")
    await expect(page.locator("#bearer-evidence")).to_contain_text(
        "The API received Authorization: Bearer eyJ")
    await expect(page.locator("#bearer-evidence")).to_contain_text(" characters)")
    await expect(page.locator("#cookie-evidence")).to_have_text(
        "The API received no Cookie header.")
    await expect(page.locator("#csrf-evidence")).to_contain_text(
        "Without it: GET /api/hello → 401 csrf-rejected")
    await expect(page.locator("#gateway-panel li.done")).to_have_count(4)
    await expect(page.locator("#api-result")).to_be_hidden()  # the JSON stays folded
    hello = json.loads(await page.locator("#api-result").text_content() or "")
    assert hello["sub"] == "alice" and hello["received"]["cookie"] is False
    assert hello["received"]["x_csrf"] is False
    assert "authorization" not in hello["headers"]
    await assert_no_token(page)
    await page.mouse.move(0, 0)
    write_if_changed(await page.screenshot(full_page=True, animations="disabled",
                                           caret="hide"), DOCS_SCREENSHOT)

    await page.locator("#post-api").click()
    await expect(page.locator("#api-status")).to_have_text("POST /api/echo → 200 OK")
    await expect(page.locator("#api-message")).to_contain_text(
        'The API echoed: {"greeting":"hello from the SPA"')

    # Ended elsewhere: an operator revokes alice's sessions on the admin listener.
    async with httpx.AsyncClient(trust_env=False, timeout=10) as admin:
        revoked = await admin.delete(f"{demo.admin_url}/admin/sessions",
                                     params={"sub": "alice"})
    assert revoked.status_code == 200 and revoked.json()["revoked"] >= 1, revoked.text
    await page.locator("#call-api").click()
    await expect_state(page, "ended", "Your session has ended.",
                       "GET /api/hello → 401 not-authenticated", "Log in")
    await expect(page.locator("#gateway-panel")).to_be_hidden()
    await expect(page.locator("#result")).to_be_hidden()

    await sign_in_at_the_idp(page, demo, page.locator("#state-ended button.login"), chromium)
    await expect_state(page, "signed-in", "Signed in as Alice")

    href = await page.locator("#logout").get_attribute("href")
    assert href and href.startswith("/bff/logout?sid="), href
    async with page.expect_navigation(url=demo.url + "/"):
        await page.locator("#logout").click()
    visible = await expect_state(page, "logged-out", "You logged out.", "Log in")
    assert "not signed in" not in visible.lower()
    assert await chromium.cookie(demo.url, SESSION_COOKIE) is None

    await page.reload()  # a fresh look at the same tab: simply signed out
    await expect_state(page, "signed-out", "You are not signed in.")

    # Everything stayed on this machine, the page's strict CSP held, no script error.
    assert not chromium.blocked, chromium.describe()
    assert not chromium.page_errors, chromium.describe()
    csp = [text for kind, text in chromium.console if "Content Security Policy" in text]
    assert not csp, csp
