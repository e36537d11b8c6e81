"""Integration: the probe's sign-in at login pages other than the test IdP's, served by a
real HTTP server in a thread (the oidc-provider test IdP takes any password and shows one
page): a username-first IdP (user, then password), a refused password (the form again),
and a page without any form."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest

from bffgate.config import load_settings
from bffgate.probe.account import Account, sign_in
from bffgate.probe.browser import Browser
from bffgate.probe.result import Findings

pytestmark = pytest.mark.integration

USER_PAGE = ('<form method="post" action="/user"><input type="hidden" name="t" value="1">'
             '<input type="email" name="identifier"></form>')
PASSWORD_PAGE = ('<form method="post" action="/password"><input type="text" name="identifier" '
                 'value="{user}"><input type="password" name="secret"></form>')
NO_FORM = "<p>maintenance</p>"


class LoginPages:
    """POST /user {identifier} -> the password page; POST /password: the right one ->
    302 to the callback with a code, a wrong one -> the password page again."""

    def __init__(self, callback: str) -> None:
        posts: list[dict[str, list[str]]] = []
        self.posts = posts

        class Handler(BaseHTTPRequestHandler):
            def _page(self, html: str) -> None:
                body = html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                self._page(NO_FORM if self.path == "/down" else USER_PAGE)

            def do_POST(self) -> None:
                form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
                posts.append(form)
                user = form.get("identifier", [""])[0]
                if self.path == "/user":
                    self._page(PASSWORD_PAGE.format(user=user))
                elif form.get("secret") == ["right-password"] and user == "probe-user":
                    self.send_response(302)
                    self.send_header("Location", callback + "?code=c0de-c0de-c0de&state=s")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._page(PASSWORD_PAGE.format(user=user))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def settings(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "bffgate.toml"
    path.write_text('[server]\npublic_url = "http://localhost:8080"\n'
                    '[oidc]\nissuer = "http://127.0.0.1:9"\nclient_id = "c"\n'
                    'client_secret = "s"\n[session]\nstore = "memory"\n'
                    '[cookie]\nsecret_keys = ["cookie-key-0123456789-0123456789-abcdef"]\n')
    return load_settings(path)


@pytest.fixture
def pages(settings) -> Iterator[LoginPages]:  # type: ignore[no-untyped-def]
    p = LoginPages(settings.redirect_uri)
    yield p
    p.server.shutdown()
    p.server.server_close()


async def walk(pages: LoginPages, settings, password: str, path: str = "/") -> tuple[str | None, Findings]:  # type: ignore[no-untyped-def]
    findings = Findings()
    async with Browser(5) as browser:
        page = await browser.get(pages.url + path)
        done = await sign_in(browser, pages.url + path, page, Account("probe-user", password),
                             settings, findings)
    return done, findings


async def test_username_first_then_password(pages: LoginPages, settings) -> None:  # type: ignore[no-untyped-def]
    done, findings = await walk(pages, settings, "right-password")
    assert done == settings.redirect_uri + "?code=c0de-c0de-c0de&state=s"
    (check,) = findings.checks
    assert (check.name, check.ok) == ("idp_login", True)
    assert pages.posts[0] == {"t": ["1"], "identifier": ["probe-user"]}
    assert pages.posts[1] == {"identifier": ["probe-user"], "secret": ["right-password"]}
    assert "c0de-c0de-c0de" in findings.secrets and "right-password" in findings.secrets


async def test_a_refused_password_is_named(pages: LoginPages, settings) -> None:  # type: ignore[no-untyped-def]
    done, findings = await walk(pages, settings, "wrong-password")
    assert done is None
    (check,) = findings.checks
    assert not check.ok
    assert "login form again" in check.detail and "wrong --user or --password-file" in check.detail
    assert len(pages.posts) == 2


async def test_a_page_without_a_form(pages: LoginPages, settings) -> None:  # type: ignore[no-untyped-def]
    done, findings = await walk(pages, settings, "right-password", "/down")
    assert done is None
    assert findings.checks[0].detail == "no login form on the IdP's page /down"
