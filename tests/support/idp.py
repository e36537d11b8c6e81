"""Drive the test OpenID provider (tests/idp/server.mjs, npm ``oidc-provider`` v9).

``OidcProviderProcess`` runs the OP as a child process on 127.0.0.1; ``complete_idp_login``
logs a user in through the OP's plain-HTML dev interactions without a browser.

Node dependencies must be installed first: ``npm ci --prefix tests/idp``.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import socket
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urljoin

import httpx

from support.processes import ChildProcess, log_line

IDP_DIR = Path(__file__).resolve().parent.parent / "idp"
SERVER_SCRIPT = IDP_DIR / "server.mjs"
NODE_MODULES = IDP_DIR / "node_modules"

START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0


_PORTS_FROM = 10000
_given: set[int] = set()


def ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the local ports of outgoing connections (Linux)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago, below the kernel's ephemeral
    range and not handed out before by this process.

    Not ``bind(0)``: that picks from the ephemeral range, where every outgoing connection
    (a client's to Redis, the IdP, an upstream) also takes its local port, so one could
    take the port between this call and the server's own bind ("port ... is in use": CI
    failed so once). A port below the range is only ever taken by a listener."""
    low, _ = ephemeral_range()
    if low - _PORTS_FROM < 2000:  # no room below the range: the kernel's choice
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])
    if len(_given) > (low - _PORTS_FROM) // 2:
        _given.clear()  # a very long run: ports handed out long ago are free again
    while True:
        port = random.randrange(_PORTS_FROM, low)
        if port in _given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:  # a listener (or anything) holds it
                continue
        _given.add(port)
        return port


class IdpStartError(RuntimeError):
    """The test OP did not start."""


class OidcProviderProcess:
    """A real oidc-provider OP on ``http://127.0.0.1:<port>``.

    ``clients`` are oidc-provider client metadata dicts (client_id, client_secret,
    redirect_uris, token_endpoint_auth_method, ...). All state is in memory and signing keys
    are made at start, so ``restart()`` invalidates every token and session.
    """

    def __init__(
        self,
        clients: list[dict[str, Any]],
        access_token_ttl: int = 300,
        rotate_refresh_tokens: bool = True,
        port: int | None = None,
        *,
        id_token_ttl: int = 300,
        refresh_token_ttl: int = 86400,
        auto_consent: bool = True,
        state_file: str | None = None,
    ) -> None:
        self.state_file = state_file  # keep keys, grants and tokens across restart()
        self.clients = clients
        self.access_token_ttl = access_token_ttl
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.id_token_ttl = id_token_ttl
        self.refresh_token_ttl = refresh_token_ttl
        self.auto_consent = auto_consent
        self._fixed_port = port is not None
        self._port = port if port is not None else free_port()
        self._child: ChildProcess | None = None
        self._logdir: str | None = None
        self._metadata: dict[str, Any] | None = None

    # ------------------------------------------------------------------ properties

    @property
    def port(self) -> int:
        return self._port

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def pid(self) -> int | None:
        return self._child.pid if self._child is not None else None

    @property
    def running(self) -> bool:
        return self._child is not None and self._child.running

    def stderr_text(self) -> str:
        """Everything the OP wrote to stderr so far (warnings, errors)."""
        if self._logdir is None:
            return ""
        path = Path(self._logdir) / "stderr.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ lifecycle

    def _config(self) -> str:
        return json.dumps(
            {
                "port": self._port,
                "clients": self.clients,
                "access_token_ttl": self.access_token_ttl,
                "id_token_ttl": self.id_token_ttl,
                "refresh_token_ttl": self.refresh_token_ttl,
                "rotate_refresh_tokens": self.rotate_refresh_tokens,
                "auto_consent": self.auto_consent,
                **({"state_file": self.state_file} if self.state_file else {}),
            }
        )

    def start(self) -> OidcProviderProcess:
        if self.running:
            return self
        if not (NODE_MODULES / "oidc-provider").is_dir():
            raise IdpStartError(
                f"{NODE_MODULES} is missing: install the test IdP's node dependencies with "
                "`npm ci --prefix tests/idp` (from the repository root)"
            )
        node = shutil.which("node")
        if node is None:
            raise IdpStartError("`node` is not on PATH: the test IdP needs Node.js 20+")
        attempts = 1 if self._fixed_port else 3
        for attempt in range(attempts):
            try:
                self._spawn(node)
                return self
            except IdpStartError as exc:
                if attempt + 1 < attempts and "EADDRINUSE" in str(exc):
                    self._port = free_port()
                    continue
                raise
        raise AssertionError("unreachable")

    def _spawn(self, node: str) -> None:
        if self._logdir is None:
            self._logdir = tempfile.mkdtemp(prefix="bffgate-test-idp-")
        # IDP_EXIT_ON_STDIN_EOF: the OP exits if this process dies and the stdin pipe closes.
        env = dict(os.environ, IDP_CONFIG=self._config(), IDP_EXIT_ON_STDIN_EOF="1")
        # Files, not pipes: nobody drains a pipe during the test and a full one blocks node.
        child = ChildProcess("test IdP", [node, str(SERVER_SCRIPT)],
                             Path(self._logdir) / "stdout.log", env=env, cwd=IDP_DIR,
                             stdin_pipe=True, stderr_path=Path(self._logdir) / "stderr.log")
        child.log_path.write_bytes(b"")  # READY is looked for in this start's output only
        self._child = child.start()
        self._metadata = None
        try:
            child.wait_ready(log_line(child, "READY "), timeout=START_TIMEOUT,
                             what="READY")
        except RuntimeError as exc:
            self._child = None
            raise IdpStartError(str(exc)) from None

    def _terminate(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop(STOP_TIMEOUT)

    def stop(self) -> None:
        """SIGTERM the OP by PID, SIGKILL after 5 s. Safe to call twice."""
        self._terminate()
        self._metadata = None

    def restart(self) -> OidcProviderProcess:
        """Stop and start again on the same port (new keys, no tokens, no sessions)."""
        self.stop()
        self._fixed_port = True
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._logdir is not None:
            shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None

    def __enter__(self) -> OidcProviderProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ HTTP helpers

    def _http(self) -> httpx.Client:
        return httpx.Client(base_url=self.issuer, timeout=10.0, trust_env=False)

    def metadata(self) -> dict[str, Any]:
        """The OP's discovery document (cached until the next stop)."""
        if self._metadata is None:
            with self._http() as http:
                resp = http.get("/.well-known/openid-configuration")
                resp.raise_for_status()
                self._metadata = resp.json()
        return self._metadata

    def endpoint(self, name: str) -> str:
        """A discovery URL, e.g. ``endpoint("token")`` -> metadata["token_endpoint"]."""
        return str(self.metadata()[f"{name}_endpoint"])

    def stats(self) -> dict[str, Any]:
        """``{"token_requests": [{grant_type, client_auth, client_id, assertion, status, ts}],
        "refresh_grants", "refresh_success", "revocations": [{token_sha256, token_type_hint,
        client_id, client_auth, assertion, status, ts}]}`` since start or the last
        ``reset_stats()``. ``client_auth`` is basic, post, private_key_jwt or none;
        ``assertion`` is the client assertion's JOSE header ``{alg, kid}`` (or null)."""
        with self._http() as http:
            resp = http.get("/test/stats")
            resp.raise_for_status()
            data: dict[str, Any] = resp.json()
            return data

    def reset_stats(self) -> None:
        with self._http() as http:
            http.post("/test/reset").raise_for_status()

    def introspect(self, token: str, client_id: str, client_secret: str) -> dict[str, Any]:
        """RFC 7662 introspection, authenticating with client_secret_basic."""
        with self._http() as http:
            resp = http.post(
                self.endpoint("introspection"),
                data={"token": token},
                auth=(client_id, client_secret),
            )
            resp.raise_for_status()
            data: dict[str, Any] = resp.json()
            return data

    def revoke(
        self, token: str, client_id: str, client_secret: str, token_type_hint: str | None = None
    ) -> None:
        """RFC 7009 revocation (client_secret_basic). Revoking an access token also kills the
        refresh tokens of the same grant."""
        data = {"token": token}
        if token_type_hint:
            data["token_type_hint"] = token_type_hint
        with self._http() as http:
            resp = http.post(
                self.endpoint("revocation"), data=data, auth=(client_id, client_secret)
            )
            resp.raise_for_status()

    def send_backchannel_logout(
        self, sub: str, sid: str | None = None, client_id: str | None = None
    ) -> list[dict[str, Any]]:
        """Make the OP POST a logout_token to every client (or ``client_id``) that registered
        a backchannel_logout_uri. Returns ``[{"client_id", "ok", "error"?}]``."""
        body: dict[str, Any] = {"sub": sub}
        if sid is not None:
            body["sid"] = sid
        if client_id is not None:
            body["client_id"] = client_id
        with self._http() as http:
            resp = http.post("/test/backchannel", json=body)
            resp.raise_for_status()
            sent: list[dict[str, Any]] = resp.json()["sent"]
            return sent


# ---------------------------------------------------------------------- scripted login


class _Form:
    def __init__(self, action: str | None, method: str, form_id: str | None) -> None:
        self.action = action
        self.method = method
        self.id = form_id
        self.fields: dict[str, str] = {}
        self.buttons: list[tuple[str, str]] = []


class _FormParser(HTMLParser):
    """Collects <form>s with their <input>s and named <button>s (incl. form="id" owners)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[_Form] = []
        self._current: _Form | None = None
        self._orphans: list[tuple[str | None, str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self._current = _Form(a.get("action"), (a.get("method") or "get").lower(), a.get("id"))
            self.forms.append(self._current)
        elif tag in ("input", "button"):
            name = a.get("name")
            if not name:
                return
            kind = a.get("type", "submit" if tag == "button" else "text").lower()
            owner = a.get("form")
            if owner is not None or self._current is None:
                self._orphans.append((owner, kind, name, a.get("value", "")))
            elif kind == "submit":
                self._current.buttons.append((name, a.get("value", "")))
            elif kind not in ("checkbox", "radio") or "checked" in a:
                self._current.fields[name] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._current = None

    def close(self) -> None:
        super().close()
        by_id = {f.id: f for f in self.forms if f.id}
        for owner, kind, name, value in self._orphans:
            form = by_id.get(owner or "")
            if form is None:
                continue
            if kind == "submit":
                form.buttons.append((name, value))
            else:
                form.fields[name] = value


def _parse_forms(html: str) -> list[_Form]:
    parser = _FormParser()
    parser.feed(html)
    parser.close()
    return parser.forms


class IdpLoginError(AssertionError):
    """The scripted login did not reach the redirect URI."""


async def complete_idp_login(
    client: httpx.AsyncClient,
    authorize_url: str,
    redirect_uri_prefix: str,
    login: str = "alice",
    *,
    password: str = "password",
    max_steps: int = 20,
) -> str:
    """Log ``login`` in at the OP and return the final redirect URL (NOT requested).

    Starts from the authorization URL the gateway redirected to, follows the OP's own
    redirects by hand, posts the login form (``login``/``password``) and the consent form
    (with its hidden inputs) when shown, and stops at the first Location that starts with
    ``redirect_uri_prefix`` (the gateway callback with code/state/iss, or an error).
    ``client`` must keep cookies between calls (the OP's session/interaction cookies).
    """
    def next_step(resp: httpx.Response, url: str, trail: list[str]) -> _Step:
        body = resp.text
        if resp.status_code != 200 or "html" not in resp.headers.get("content-type", ""):
            raise IdpLoginError(
                f"unexpected OP response {resp.status_code} for {url}\n"
                f"trail: {trail}\nbody: {body[:2000]}"
            )
        forms = _parse_forms(body)
        form = next((f for f in forms if "login" in f.fields and "password" in f.fields), None)
        if form is not None:
            form.fields["login"] = login
            form.fields["password"] = password
        else:
            form = next((f for f in forms if f.fields.get("prompt") == "consent"), None)
        if form is None:
            raise IdpLoginError(
                f"no login or consent form on the OP page {url}\ntrail: {trail}\n"
                f"body: {body[:2000]}"
            )
        action = urljoin(url, form.action or url)
        if form.method == "post":
            return "POST", action, dict(form.fields)
        query = httpx.QueryParams(form.fields)
        return "GET", f"{action.split('?', 1)[0]}?{query}", None

    return await _walk_op(client, authorize_url, redirect_uri_prefix, next_step, max_steps,
                          "login")


async def complete_idp_logout(
    client: httpx.AsyncClient,
    end_session_url: str,
    post_logout_redirect_prefix: str,
    *,
    max_steps: int = 10,
) -> str:
    """Confirm an RP-initiated logout at the OP ("Yes, sign me out") and return the final
    Location that starts with ``post_logout_redirect_prefix`` (NOT requested).

    ``end_session_url`` is the OP's /session/end URL the gateway redirected to; ``client``
    must hold the OP cookies of the login (the OP ends only the session it can see). The OP
    sends its back-channel logout requests while handling the confirmation.
    """
    def next_step(resp: httpx.Response, url: str, trail: list[str]) -> _Step:
        forms = _parse_forms(resp.text) if resp.status_code == 200 else []
        form = next((f for f in forms if "xsrf" in f.fields), None)
        if form is None:
            raise IdpLoginError(
                f"unexpected OP response {resp.status_code} for {url}\n"
                f"trail: {trail}\nbody: {resp.text[:2000]}"
            )
        return "POST", urljoin(url, form.action or url), {**form.fields, "logout": "yes"}

    return await _walk_op(client, end_session_url, post_logout_redirect_prefix, next_step,
                          max_steps, "logout")


_Step = tuple[str, str, dict[str, str] | None]


async def _walk_op(client: httpx.AsyncClient, start_url: str, stop_prefix: str,
                   next_step: Any, max_steps: int, what: str) -> str:
    """Follow the OP's redirects by hand; on a page, ``next_step`` picks the form to send.
    Returns the first Location starting with ``stop_prefix`` (NOT requested)."""
    method, url, data = "GET", start_url, None
    trail: list[str] = []
    for _ in range(max_steps):
        trail.append(f"{method} {url}")
        resp = await client.request(method, url, data=data, follow_redirects=False)
        if resp.is_redirect:
            location = urljoin(url, resp.headers["location"])
            if location.startswith(stop_prefix):
                return location
            method, url, data = "GET", location, None
            continue
        method, url, data = next_step(resp, url, trail)
    raise IdpLoginError(f"{what} did not reach {stop_prefix} in {max_steps} steps: {trail}")
