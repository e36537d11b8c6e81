"""E2E for ``bffgate demo``: the one-command first look (gateway + dev IdP + demo API + demo
page) as a real process, driven over plain HTTP and through the demo page in Chromium."""

from __future__ import annotations

import json
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest
from playwright.async_api import expect

from support.browser import Browser
from support.chromium import ChromiumSession
from support.gateway import ALL_LOGS, child_env
from support.idp import _parse_forms
from support.secrets_scan import remember

pytestmark = pytest.mark.e2e

READY = "bffgate demo is running"
PORT_OFFSETS = (0, 1, 2, 3, 10)  # gateway, dev IdP, demo API, demo page, admin
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
SCREENSHOT = Path("/tmp/bffgate-demo.png")
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
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    @property
    def idp_url(self) -> str:
        return f"http://127.0.0.1:{self.port + 1}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_demo(log_path: Path) -> DemoProcess:
    env = child_env({"PYTHONUNBUFFERED": "1"})
    last_error = ""
    for _ in range(3):
        port = pick_demo_port()
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "bffgate", "demo", "--port", str(port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        demo = DemoProcess(port, proc, log_path)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if READY in demo.log():
                return demo
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        if proc.poll() is None:  # never became ready: stop it, by PID
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        last_error = demo.log()
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
        if proc.proc.poll() is None:
            proc.proc.send_signal(signal.SIGINT)  # Ctrl-C, as the banner says
            try:
                proc.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.proc.kill()
                proc.proc.wait(5)
                pytest.fail(f"bffgate demo did not exit within {STOP_TIMEOUT:.0f} s of SIGINT:"
                            f"\n{proc.log()[-3000:]}")
        assert proc.proc.returncode in (0, -signal.SIGINT, 130), (
            f"bffgate demo exited {proc.proc.returncode}:\n{proc.log()[-3000:]}")
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
            assert 'id="login"' in page_resp.text

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
    async with ChromiumSession(record_origins=[demo.url]) as session:
        yield session


async def test_demo_page_in_chromium(demo: DemoProcess, chromium: ChromiumSession) -> None:
    """The demo page as a user sees it: log in, call the API, post, log out."""
    page = chromium.page
    await page.goto(demo.url + "/")
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#user")).to_be_hidden()

    async with page.expect_navigation():
        await page.locator("#login").click()
    assert page.url.startswith(demo.idp_url + "/authorize?"), chromium.describe()
    await expect(page.locator("#dev-banner")).to_contain_text("NOT FOR PRODUCTION")
    await page.locator("#username").fill("alice")
    await page.locator("#password").fill("anything")
    async with page.expect_navigation():
        await page.locator("#sign-in").click()
    assert page.url == demo.url + "/", chromium.describe()

    await expect(page.locator("#user")).to_be_visible()
    await expect(page.locator("#user-sub")).to_have_text("alice")
    await expect(page.locator("#status")).to_have_text("Signed in.")
    await expect(page.locator("#anonymous")).to_be_hidden()
    cookie = await chromium.cookie(demo.url, SESSION_COOKIE)
    assert cookie is not None and cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    remember("session_cookie", cookie["value"])
    assert SESSION_COOKIE not in await page.evaluate("document.cookie")

    await page.locator("#call-api").click()
    await expect(page.locator("#api-result")).to_contain_text("Hello")
    await expect(page.locator("#api-status")).to_contain_text("GET /api/hello → 200")
    hello = json.loads(await page.locator("#api-result").inner_text())
    assert hello["sub"] == "alice" and hello["token_seen"] is True
    await page.screenshot(path=str(SCREENSHOT), full_page=True)

    await page.locator("#post-api").click()
    await expect(page.locator("#api-status")).to_contain_text("POST /api/echo → 200")
    echo = json.loads(await page.locator("#api-result").inner_text())
    assert echo["echo"]["greeting"] == "hello from the SPA"
    assert echo["headers"].get("origin") in (None, demo.url)

    href = await page.locator("#logout").get_attribute("href")
    assert href and href.startswith("/bff/logout?sid="), href
    async with page.expect_navigation(url=demo.url + "/**"):
        await page.locator("#logout").click()
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#user")).to_be_hidden()
    await expect(page.locator("#status")).to_have_text("Not signed in.")
    assert await chromium.cookie(demo.url, SESSION_COOKIE) is None

    # Everything stayed on this machine, the page's strict CSP held, no script error.
    assert not chromium.blocked, chromium.describe()
    assert not chromium.page_errors, chromium.describe()
    csp = [text for kind, text in chromium.console if "Content Security Policy" in text]
    assert not csp, csp
