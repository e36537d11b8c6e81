"""The ``bffgate serve`` TOML printed by ``bffgate demo --idp-only``: a gateway for the dev IdP."""

from __future__ import annotations

import json
import os
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bffgate.config import ConfigError, load_settings
from bffgate.config.rules import is_loopback_host

CLIENT_ID = "bffgate-dev"
DEFAULT_REDIRECT_URI = "http://localhost:8080/bff/callback"
DEFAULT_UPSTREAM = "http://127.0.0.1:8081"
# First line of every file --write-config writes: only such a file is ever overwritten.
MARKER = "# bffgate serve config for the DEVELOPMENT identity provider (bffgate demo --idp-only)"
ADMIN_PORT_OFFSET = 10  # as in `bffgate demo`: the admin listener on the gateway port + 10


class DevConfigError(ValueError):
    """A ``demo --idp-only`` argument that cannot make a working config; the message says why."""


@dataclass(frozen=True)
class DevGateway:
    """Where the gateway the printed config describes will run, from the first redirect URI."""

    public_url: str  # scheme://host[:port]
    listen: str  # 127.0.0.1:port
    redirect_path: str

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])


def parse_redirect_uris(values: list[str] | None) -> list[str]:
    """Every --redirect-uri (repeatable, each may be a comma list), checked, in order, once."""
    uris: list[str] = []
    for value in values or [DEFAULT_REDIRECT_URI]:
        for part in value.split(","):
            uri = part.strip()
            if uri and uri not in uris:
                _check_redirect_uri(uri)
                uris.append(uri)
    if not uris:
        raise DevConfigError("--redirect-uri is empty: give one like " + DEFAULT_REDIRECT_URI)
    return uris


def _check_redirect_uri(uri: str) -> None:
    parts = urlsplit(uri)
    example = f"like {DEFAULT_REDIRECT_URI}"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DevConfigError(f"--redirect-uri {uri!r}: must be an absolute http(s) URL {example}")
    if parts.username is not None or parts.password is not None:
        raise DevConfigError(f"--redirect-uri {uri!r}: must not carry a user name or password")
    if parts.query or parts.fragment or "?" in uri or "#" in uri:
        raise DevConfigError(f"--redirect-uri {uri!r}: must have no query and no #fragment")
    if parts.path in ("", "/"):
        raise DevConfigError(
            f"--redirect-uri {uri!r}: needs the gateway's callback path, {example}")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number in 0-65535
    except ValueError:
        raise DevConfigError(f"--redirect-uri {uri!r}: the port is not valid") from None


def origin_of(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def gateway_for(redirect_uri: str) -> DevGateway:
    parts = urlsplit(redirect_uri)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return DevGateway(origin_of(redirect_uri), f"127.0.0.1:{port}", parts.path)


def _toml(value: str | list[str]) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    if isinstance(value, list):
        return "[" + ", ".join(json.dumps(v) for v in value) + "]"
    return json.dumps(value)


def render_config(issuer: str, client_secret: str, redirect_uri: str,
                  upstream: str = DEFAULT_UPSTREAM) -> str:
    """A complete config for ``bffgate serve`` against the dev IdP, with fresh cookie keys."""
    gw = gateway_for(redirect_uri)
    admin_port = gw.port + ADMIN_PORT_OFFSET
    admin_listen = f"127.0.0.1:{admin_port}" if admin_port <= 65535 else ""
    plain_http = gw.public_url.startswith("http://") and is_loopback_host(
        urlsplit(redirect_uri).hostname)
    cookie = (
        "# Plain http on loopback: no __Host- prefix and no Secure flag, so every browser\n"
        "# (Safari too) keeps the cookie. Allowed only because public_url is loopback.\n"
        'name = "bffgate-dev"\nsecure = false\n'
        if plain_http else ""
    )
    return f"""{MARKER}
# NOT FOR PRODUCTION. The client secret below is the dev IdP's throwaway secret: printing
# it is fine, because that IdP signs in any user name without a password and forgets
# everything when it stops. The cookie keys were generated just now. Restarting the dev IdP
# makes a new client secret: then use the config it prints again.
#
#   bffgate serve --config <this file>

[server]
public_url = {_toml(gw.public_url)}
listen = {_toml(gw.listen)}
# /healthz, /readyz, /metrics; "" disables it.
admin_listen = {_toml(admin_listen)}

[oidc]
issuer = {_toml(issuer)}
client_id = {_toml(CLIENT_ID)}
client_secret = {_toml(client_secret)}
# redirect_uri = public_url + redirect_path = {redirect_uri}
redirect_path = {_toml(gw.redirect_path)}

[session]
# In memory: one process, sessions are lost when it stops. Development only.
store = "memory"

[cookie]
{cookie}secret_keys = {_toml([secrets.token_urlsafe(32)])}

[log]
format = "console"

[[routes]]
# Your API: change upstream to where it runs. The gateway adds Authorization: Bearer.
prefix = "/api"
upstream = {_toml(upstream)}
token = "user"

# Your SPA's dev server (e.g. Vite), on the same origin, without a token:
# [[routes]]
# prefix = "/"
# upstream = "http://127.0.0.1:5173"
# token = "none"
"""


def check_config(text: str) -> None:
    """Load the rendered config through the real loader; DevConfigError names each problem
    (server.* and oidc.redirect_path come from --redirect-uri, routes[0] from --upstream)."""
    try:
        load_settings(None, environ={}, overrides=tomllib.loads(text))
    except ConfigError as exc:
        raise DevConfigError(
            "the gateway config would not load (server.* comes from --redirect-uri, "
            "routes[0].upstream from --upstream): " + "; ".join(exc.messages)) from None


def write_config(path: Path, text: str) -> None:
    """Write the config (owner-only: it holds keys); overwrite only a file this command wrote."""
    if path.exists():
        try:
            first = path.read_text(encoding="utf-8").split("\n", 1)[0]
        except (OSError, UnicodeDecodeError):
            first = ""
        if first != MARKER:
            raise DevConfigError(
                f"--write-config {path}: the file exists and was not written by "
                "`bffgate demo --idp-only`; remove it or pick another path")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise DevConfigError(f"--write-config {path}: cannot write: {exc.strerror}") from None
