"""Apache httpd as a peer for the benches: plain ``mod_proxy``, or ``mod_auth_openidc`` as a BFF.

    from peers.apache import start_apache, apache_login

    plain = start_apache(tmpdir, port, "http://127.0.0.1:U")          # mod_proxy only
    bff = start_apache(tmpdir, port, "http://127.0.0.1:U", oidc={
        "issuer": "http://127.0.0.1:I", "client_id": "...", "client_secret": "...",
        "redis_port": R, "refresh_before_expiry": 2})
    cookie = apache_login(bff.url)          # "mod_auth_openidc_session=<value>"
    ...
    bff.stop()

Writes its own ``httpd.conf`` (ServerRoot, PidFile, logs, lock files all under ``tmpdir``)
and runs ``apache2 -f CONF -DFOREGROUND`` (Debian packages ``apache2`` and
``libapache2-mod-auth-openidc`` 2.4.12); the handle stops it by its PID (SIGTERM, then
SIGKILL) - never by name.

Routes, both modes: ``/api`` is proxied (``ProxyPass``) to ``upstream_url`` + ``/api``.
With ``oidc``:

* ``mod_auth_openidc`` with discovery (``<issuer>/.well-known/openid-configuration``),
  PKCE S256, the client's secret (``client_secret_basic``), server-side sessions in Redis
  (``OIDCSessionType server-cache``, ``OIDCCacheType redis``), the session cookie SameSite,
  ``OIDCRefreshAccessTokenBeforeExpiry <refresh_before_expiry>`` (plus ``refresh_on_error``
  when given: ``logout_on_error`` / ``authenticate_on_error``);
* ``/api``: ``OIDCUnAuthAction 401`` (an API call without a session gets 401, not a 302),
  the access token to the upstream as ``Authorization: Bearer`` (2.4.12 has no
  ``OIDCPassAccessToken``: ``RequestHeader set`` from the ``OIDC_access_token`` variable),
  claims passed as environment variables only (no ``OIDC_CLAIM_*`` headers upstream) and the
  browser's ``Cookie`` header not forwarded (as bffgate does);
* ``/login``: requires a login (302 to the IdP), then answers 200 ``logged in``; the
  redirect URI is ``<public origin>/oidc/callback``. ``OIDCScope`` has no
  ``offline_access``: 2.4.12 repeats the scope in every refresh request and oidc-provider
  refuses it there (see /work/shared/peer-notes.md); the IdP must issue refresh tokens
  without it (bffgate's development IdP always does).

``apache_login(url)`` signs in through the IdP's HTML form with httpx (no browser): it
follows the redirects by hand, fills bffgate's development IdP form (``username``) or
oidc-provider's dev interactions (``login``/``password``, then consent), and returns the
``mod_auth_openidc_session`` cookie as a ``name=value`` string for a ``Cookie`` header.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

MODULES_DIR = Path("/usr/lib/apache2/modules")
SESSION_COOKIE = "mod_auth_openidc_session"
REDIRECT_PATH = "/oidc/callback"
BASE_MODULES = ("mpm_event", "authn_core", "authz_core", "authz_user", "headers", "proxy",
                "proxy_http")
OIDC_MODULES = ("auth_openidc",)


def apache_binary() -> str | None:
    """The apache2 binary (Debian puts it in /usr/sbin), or None when not installed."""
    return shutil.which("apache2") or shutil.which("apache2", path="/usr/sbin:/usr/local/sbin")


def mod_auth_openidc_version() -> str | None:
    """The installed libapache2-mod-auth-openidc package version (dpkg), or None."""
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}",
                              "libapache2-mod-auth-openidc"], capture_output=True, check=True,
                             text=True)
        return out.stdout.strip() or None
    return None


@dataclass
class ApacheHandle:
    """A running Apache: ``pid`` (the parent), ``url`` (its public origin), ``stop()``."""

    popen: subprocess.Popen[bytes]
    port: int
    conf: Path
    root: Path
    public_url: str
    oidc: bool
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def url(self) -> str:
        return self.public_url

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def pids(self) -> list[int]:
        """The parent and its children (the mpm_event workers), for CPU accounting."""
        out = [self.pid]
        children = Path(f"/proc/{self.pid}/task/{self.pid}/children")
        with contextlib.suppress(OSError):
            out += [int(p) for p in children.read_text().split()]
        return out

    def error_log(self, lines: int = 40) -> str:
        path = self.root / "logs" / "error.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM the parent by PID (it stops its workers), SIGKILL after ``timeout``."""
        popen = self.popen
        htdocs = self.root / "htdocs-path"
        if htdocs.exists():
            shutil.rmtree(htdocs.read_text(), ignore_errors=True)
        if popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait(5)
        return popen.returncode

    def __enter__(self) -> ApacheHandle:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _load_modules(names: tuple[str, ...]) -> str:
    lines = []
    for name in names:
        path = MODULES_DIR / f"mod_{name}.so"
        if not path.exists():
            raise RuntimeError(f"{path} is missing: apt-get install apache2"
                               + (" libapache2-mod-auth-openidc" if name == "auth_openidc"
                                  else ""))
        lines.append(f"LoadModule {name}_module {path}")
    return "\n".join(lines)


def _oidc_block(oidc: Mapping[str, Any], public_url: str) -> str:
    issuer = str(oidc["issuer"]).rstrip("/")
    refresh = int(oidc.get("refresh_before_expiry", 2))
    on_error = oidc.get("refresh_on_error")  # None, logout_on_error, authenticate_on_error
    scope = oidc.get("scope", "openid profile email")
    passphrase = oidc.get("crypto_passphrase") or secrets.token_urlsafe(24)
    redis = f"127.0.0.1:{int(oidc['redis_port'])}"
    lines = [
        f"OIDCProviderMetadataURL {issuer}/.well-known/openid-configuration",
        f"OIDCClientID {oidc['client_id']}",
        f"OIDCClientSecret {oidc['client_secret']}",
        f"OIDCProviderTokenEndpointAuth {oidc.get('token_endpoint_auth', 'client_secret_basic')}",
        f"OIDCRedirectURI {public_url}{REDIRECT_PATH}",
        f"OIDCCryptoPassphrase {passphrase}",
        f'OIDCScope "{scope}"',
        "OIDCPKCEMethod S256",
        "OIDCSessionType server-cache",
        "OIDCCacheType redis",
        f"OIDCRedisCacheServer {redis}",
        "OIDCCookieSameSite On",
        "OIDCPassClaimsAs environment",
        f"OIDCSessionInactivityTimeout {int(oidc.get('inactivity_timeout', 3600))}",
        f"OIDCSessionMaxDuration {int(oidc.get('max_duration', 28800))}",
        f"OIDCRefreshAccessTokenBeforeExpiry {refresh}" + (f" {on_error}" if on_error else ""),
        "",
        f"<Location {REDIRECT_PATH}>",
        "    AuthType openid-connect",
        "    Require valid-user",
        "</Location>",
        "<Location /login>",
        "    AuthType openid-connect",
        "    Require valid-user",
        "</Location>",
        "<Location /api>",
        "    AuthType openid-connect",
        "    Require valid-user",
        "    OIDCUnAuthAction 401",
        '    RequestHeader set Authorization "Bearer %{OIDC_access_token}e" '
        "env=OIDC_access_token",
        "    RequestHeader unset Cookie",
        "</Location>",
    ]
    lines += [str(x) for x in oidc.get("extra_directives", ())]
    return "\n".join(lines)


def write_config(root: Path, port: int, upstream_url: str, *,
                 oidc: Mapping[str, Any] | None = None, public_host: str = "127.0.0.1",
                 mpm: Mapping[str, int] | None = None, log_level: str = "warn") -> Path:
    """Write ``root/httpd.conf`` (and the dirs it names); return its path."""
    (root / "logs").mkdir(parents=True, exist_ok=True)
    (root / "run").mkdir(exist_ok=True)
    # the page behind the login; in a dir of its own that the workers (www-data when run
    # as root) can reach whatever the permissions of ``root``'s parents
    htdocs = Path(tempfile.mkdtemp(prefix="bench-apache-htdocs-"))
    os.chmod(htdocs, 0o755)
    (htdocs / "login").write_text("logged in\n")
    os.chmod(htdocs / "login", 0o644)
    (root / "htdocs-path").write_text(str(htdocs))
    public_url = f"http://{public_host}:{port}"
    upstream = upstream_url.rstrip("/")
    workers = {"StartServers": 2, "ServerLimit": 16, "ThreadsPerChild": 25,
               "MaxRequestWorkers": 400, "MinSpareThreads": 25, "MaxSpareThreads": 100,
               "ThreadLimit": 64, "MaxConnectionsPerChild": 0, **(mpm or {})}
    user = ""
    if os.geteuid() == 0:  # root must name an unprivileged user for the workers
        user = "User www-data\nGroup www-data\n"
    modules = BASE_MODULES + (OIDC_MODULES if oidc else ())
    text = "\n".join([
        f'ServerRoot "{root}"',
        f"PidFile {root}/run/httpd.pid",
        f"Mutex file:{root}/run default",
        f"DefaultRuntimeDir {root}/run",
        f"Listen 127.0.0.1:{port}",
        f"ServerName {public_host}:{port}",
        f'DocumentRoot "{htdocs}"',
        "<Directory />",
        "    AllowOverride None",
        "</Directory>",
        user,
        _load_modules(modules),
        "",
        f"ErrorLog {root}/logs/error.log",
        f"LogLevel {log_level}" + (" auth_openidc:warn" if oidc else ""),
        "KeepAlive On",
        "MaxKeepAliveRequests 0",
        "KeepAliveTimeout 30",
        "Timeout 30",
        *[f"{k} {v}" for k, v in workers.items()],
        "",
        f"ProxyPass /api {upstream}/api",
        f"ProxyPassReverse /api {upstream}/api",
        "",
        _oidc_block(oidc, public_url) if oidc else "",
        "",
    ])
    conf = root / "httpd.conf"
    conf.write_text(text)
    if os.geteuid() == 0:
        # the workers (www-data) only need the config dir to be traversable
        with contextlib.suppress(OSError):
            os.chmod(root, 0o755)
    return conf


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), 0.2):
            return True
    except OSError:
        return False


def start_apache(tmpdir: Path | str, port: int, upstream_url: str, *,
                 oidc: Mapping[str, Any] | None = None,
                 mpm: Mapping[str, int] | None = None, log_level: str = "warn",
                 timeout: float = 15.0) -> ApacheHandle:
    """Write a config under ``tmpdir`` and run Apache in the foreground until it listens.

    ``oidc``: None for plain mod_proxy, or a dict with ``issuer``, ``client_id``,
    ``client_secret``, ``redis_port`` and optionally ``refresh_before_expiry`` (seconds,
    default 2), ``refresh_on_error``, ``scope``, ``crypto_passphrase`` (share it between
    replicas sharing one Redis), ``token_endpoint_auth``, ``inactivity_timeout``,
    ``max_duration``, ``extra_directives`` (lines appended verbatim).
    ``mpm``: mpm_event settings overriding the defaults (StartServers 2, ThreadsPerChild 25,
    MaxRequestWorkers 400, ...).
    """
    binary = apache_binary()
    if binary is None:
        raise RuntimeError("apache2 not found: apt-get install apache2 "
                           "libapache2-mod-auth-openidc")
    root = Path(tmpdir)
    conf = write_config(root, port, upstream_url, oidc=oidc, mpm=mpm, log_level=log_level)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C",
           "APACHE_RUN_DIR": str(root / "run"), "APACHE_LOG_DIR": str(root / "logs")}
    log = (root / "logs" / "stdout.log").open("ab")
    try:
        popen = subprocess.Popen([binary, "-f", str(conf), "-DFOREGROUND"], env=env,
                                 stdin=subprocess.DEVNULL, stdout=log,
                                 stderr=subprocess.STDOUT, cwd=root)
    finally:
        log.close()
    handle = ApacheHandle(popen, port, conf, root, f"http://127.0.0.1:{port}", bool(oidc))
    deadline = time.monotonic() + timeout
    while not _port_open(port):
        if popen.poll() is not None:
            out = (root / "logs" / "stdout.log").read_text(errors="replace")
            raise RuntimeError(f"apache2 exited with {popen.returncode}:\n{out[-2000:]}\n"
                               f"{handle.error_log()}")
        if time.monotonic() > deadline:
            handle.stop()
            raise RuntimeError(f"apache2 not listening on {port} within {timeout:.0f} s:\n"
                               f"{handle.error_log()}")
        time.sleep(0.05)
    return handle


# --------------------------------------------------------------------------- login


class _Forms(HTMLParser):
    """<form>s with their inputs (hidden and text values; named submit buttons apart)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action"),
                               "method": (a.get("method") or "get").lower(), "fields": {}})
        elif tag in ("input", "button") and self.forms and a.get("name"):
            kind = a.get("type", "submit" if tag == "button" else "text").lower()
            if kind not in ("submit", "checkbox", "radio") or "checked" in a:
                self.forms[-1]["fields"][a["name"]] = a.get("value", "")


def _next_form(html: str, username: str, password: str) -> dict[str, Any]:
    parser = _Forms()
    parser.feed(html)
    for form in parser.forms:
        fields = form["fields"]
        if "login" in fields and "password" in fields:  # oidc-provider dev interactions
            fields.update(login=username, password=password)
            return form
        if "username" in fields:  # bffgate's development IdP
            fields["username"] = username
            return form
        if fields.get("prompt") == "consent":
            return form
    raise RuntimeError(f"no login or consent form on the IdP page: {html[:500]}")


def apache_login(url: str, *, username: str = "alice", password: str = "password",
                 login_path: str = "/login", max_steps: int = 20, client: Any = None,
                 page_after: bool = True) -> str:
    """Sign in through Apache + the IdP's form; return ``"mod_auth_openidc_session=<v>"``.

    ``client``: an ``httpx.Client`` to reuse (its keep-alive connections, as a browser
    keeps them), else one for this login; its cookies are cleared before and after.
    ``page_after=False`` stops at the callback's redirect instead of also fetching the
    page it names (bench/login_cost.py: the same two requests a bffgate login makes)."""
    import httpx

    if client is None:
        with httpx.Client(timeout=15, follow_redirects=False, trust_env=False) as own:
            return apache_login(url, username=username, password=password,
                                login_path=login_path, max_steps=max_steps, client=own,
                                page_after=page_after)
    origin = url.rstrip("/")
    callback = origin + REDIRECT_PATH
    client.cookies.clear()
    try:
        method, target, data = "GET", origin + login_path, None
        trail: list[str] = []
        for _ in range(max_steps):
            trail.append(f"{method} {urlsplit(target).path}")
            r = client.request(method, target, data=data)
            if r.is_redirect and not page_after and target.startswith(callback):
                break  # the callback answered: the session is set
            if r.is_redirect:
                location = urljoin(target, r.headers["location"])
                if location.startswith(callback) or location.startswith(origin + "/"):
                    # back at Apache: the callback, or the page after it
                    method, target, data = "GET", location, None
                    continue
                method, target, data = "GET", location, None
                continue
            if target.startswith(origin) and r.status_code == 200:
                break
            if r.status_code != 200:
                raise RuntimeError(f"login: {r.status_code} at {method} {target}: "
                                   f"{r.text[:500]} (trail {trail})\n")
            form = _next_form(r.text, username, password)
            action = urljoin(target, form["action"] or target)
            if form["method"] == "post":
                method, target, data = "POST", action, dict(form["fields"])
            else:
                query = str(httpx.QueryParams(form["fields"]))
                method, target, data = "GET", f"{action.split('?', 1)[0]}?{query}", None
        else:
            raise RuntimeError(f"login did not finish in {max_steps} steps: {trail}")
        value = client.cookies.get(SESSION_COOKIE)
        if not value:
            raise RuntimeError(f"Apache set no {SESSION_COOKIE} cookie (trail {trail})")
        return f"{SESSION_COOKIE}={value}"
    finally:
        client.cookies.clear()
