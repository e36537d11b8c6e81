"""E2E for ``bffgate demo --idp-only``: the dev IdP alone, the config it prints saved as is,
``bffgate serve`` started with it, a scripted login through the IdP's form and a proxied
call to a test upstream; and the IdP's page for an unregistered redirect_uri."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
import pytest

from support.browser import Browser
from support.gateway import ALL_LOGS, child_env
from support.idp import _parse_forms, free_port
from support.processes import ChildProcess, http_ok, log_has
from support.secrets_scan import remember
from support.upstream import EchoUpstream, header_values

pytestmark = pytest.mark.e2e

READY = "dev identity provider is running"
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
ADMIN_OFFSET = 10  # the printed config puts the admin listener on the gateway port + 10


def _free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def gateway_port() -> int:
    """A port P with P + 10 (the admin listener of the printed config) free as well."""
    for _ in range(100):
        port = free_port()
        if port + ADMIN_OFFSET <= 65535 and _free(port + ADMIN_OFFSET):
            return port
    raise RuntimeError("no free gateway port pair")


def spawn(args: list[str], workdir: Path, name: str) -> ChildProcess:
    """``bffgate <args>``, stdout and stderr in files of their own (the secret scan reads
    both)."""
    out, err = workdir / f"{name}.out", workdir / f"{name}.err"
    ALL_LOGS.extend([out, err])
    return ChildProcess(f"bffgate {args[0]}", [sys.executable, "-m", "bffgate", *args], out,
                        env=child_env({"PYTHONUNBUFFERED": "1"}), stderr_path=err).start()


@dataclass
class Setup:
    idp: ChildProcess
    gateway: ChildProcess
    idp_url: str
    gateway_url: str
    redirect_uri: str
    config: dict[str, Any]
    upstream: EchoUpstream


@pytest.fixture(scope="module")
def setup() -> Iterator[Setup]:
    workdir = Path(tempfile.mkdtemp(prefix="bffgate-idp-only-"))
    upstream = EchoUpstream().start()
    idp_port, gw_port = free_port(), gateway_port()
    redirect_uri = f"http://localhost:{gw_port}/bff/callback"
    idp = spawn(["demo", "--idp-only", "--port", str(idp_port), "--redirect-uri", redirect_uri,
                 "--upstream", upstream.url], workdir, "idp")
    gateway: ChildProcess | None = None
    try:
        idp.wait_ready(log_has(idp, READY), timeout=START_TIMEOUT)
        # What a developer does: save what was printed, run `serve` with it.
        config_path = workdir / "dev.toml"
        config_path.write_text(idp.log())
        config = tomllib.loads(idp.log())
        gateway = spawn(["serve", "--config", str(config_path)], workdir, "gateway")
        admin = f"http://127.0.0.1:{gw_port + ADMIN_OFFSET}/healthz"
        gateway.wait_ready(http_ok(admin), timeout=START_TIMEOUT)
        yield Setup(idp, gateway, f"http://127.0.0.1:{idp_port}", f"http://localhost:{gw_port}",
                    redirect_uri, config, upstream)
    finally:
        for proc in (gateway, idp):
            if proc is not None:
                rc = proc.stop(STOP_TIMEOUT, signal.SIGINT)  # Ctrl-C
                assert rc in (0, -signal.SIGINT, 130), proc.stderr()[-3000:]
                assert "Traceback" not in proc.stderr(), proc.stderr()[-3000:]
        upstream.stop()


def test_printed_config_is_complete_and_says_dev_only(setup: Setup) -> None:
    config = setup.config
    secret = config["oidc"]["client_secret"]
    assert len(secret) >= 24
    assert config["oidc"] == {"issuer": setup.idp_url, "client_id": "bffgate-dev",
                              "client_secret": secret, "redirect_path": "/bff/callback"}
    assert config["server"]["public_url"] == setup.gateway_url
    assert config["session"] == {"store": "memory"}
    keys = config["cookie"]["secret_keys"]
    assert len(keys) == 1 and len(keys[0]) >= 32
    assert config["routes"] == [{"prefix": "/api", "upstream": setup.upstream.url,
                                 "token": "user"}]
    assert "NOT FOR PRODUCTION" in setup.idp.log()
    assert "bffgate serve --config" in setup.idp.stderr()
    assert setup.redirect_uri in setup.idp.stderr()


async def test_serve_with_the_printed_config_logs_in_and_proxies(setup: Setup) -> None:
    browser = Browser(setup.gateway_url, check_cookies=False)  # bffgate-dev: no __Host- on http
    try:
        async with httpx.AsyncClient(trust_env=False, timeout=15) as idp:
            assert (await browser.api("GET", "/api/hello")).status_code == 401
            login = await browser.get("/bff/login", params={"returnUrl": "/"})
            assert login.status_code == 302, login.text
            authorize = login.headers["location"]
            assert authorize.startswith(setup.idp_url + "/authorize?")
            assert parse_qs(urlsplit(authorize).query)["redirect_uri"] == [setup.redirect_uri]

            page = await idp.get(authorize)
            assert page.status_code == 200, page.text
            forms = [f for f in _parse_forms(page.text) if "username" in f.fields]
            assert len(forms) == 1, page.text
            fields = {**forms[0].fields, "username": "bob", "password": ""}
            signed_in = await idp.post(urljoin(authorize, forms[0].action or ""), data=fields)
            assert signed_in.status_code == 302, signed_in.text
            callback = signed_in.headers["location"]
            assert callback.startswith(setup.redirect_uri + "?")
            remember("authorization_code", parse_qs(urlsplit(callback).query)["code"][0])

            done = await browser.get(callback)
            assert done.status_code == 302, done.text
            assert done.headers["location"] == "/"
            cookie = browser.cookie("bffgate-dev")
            assert cookie
            remember("session_cookie", cookie)

            user = await browser.api("GET", "/bff/user")
            assert user.status_code == 200, user.text
            assert user.json()["sub"] == "bob"

            proxied = await browser.api("GET", "/api/orders/7?x=1")
            assert proxied.status_code == 200, proxied.text
            seen = setup.upstream.last_for("/api/orders/7")
            (auth,) = header_values(seen, "authorization")
            assert auth.startswith("Bearer eyJ")
            remember("access_token", auth.removeprefix("Bearer "))
            assert header_values(seen, "cookie") == []
    finally:
        await browser.aclose()


async def test_unregistered_redirect_uri_page_shows_received_and_registered(
        setup: Setup) -> None:
    wrong = setup.gateway_url + "/bff/callback?<b>x</b>"
    async with httpx.AsyncClient(trust_env=False, timeout=15) as idp:
        page = await idp.get(setup.idp_url + "/authorize", params={
            "client_id": "bffgate-dev", "redirect_uri": wrong, "response_type": "code",
            "scope": "openid", "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            "code_challenge_method": "S256"})
    assert page.status_code == 400
    assert "redirect_uri is not registered" in page.text
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
    assert f"<code>{setup.redirect_uri}</code>" in page.text
    assert "--redirect-uri" in page.text  # how to register another


def test_bad_redirect_uri_is_one_line_and_exit_2(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bffgate", "demo", "--idp-only", "--port", str(free_port()),
         "--redirect-uri", "localhost:8080/bff/callback"],
        capture_output=True, text=True, env=child_env(), timeout=30)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "bffgate demo: --redirect-uri 'localhost:8080/bff/callback': must be an absolute "
        "http(s) URL like http://localhost:8080/bff/callback"]
