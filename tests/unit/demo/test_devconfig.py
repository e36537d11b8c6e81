"""``bffgate demo --idp-only``: redirect URI parsing, the printed config, --write-config."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

import pytest

from bffgate.cli import build_parser
from bffgate.config import load_settings
from bffgate.demo.devconfig import (
    MARKER,
    DevConfigError,
    check_config,
    parse_redirect_uris,
    render_config,
    write_config,
)

ISSUER = "http://127.0.0.1:9400"


def test_redirect_uris_repeatable_comma_lists_deduplicated() -> None:
    assert parse_redirect_uris(None) == ["http://localhost:8080/bff/callback"]
    assert parse_redirect_uris([
        "http://localhost:3000/bff/callback, http://127.0.0.1:3000/bff/callback",
        "http://localhost:3000/bff/callback",
    ]) == ["http://localhost:3000/bff/callback", "http://127.0.0.1:3000/bff/callback"]


@pytest.mark.parametrize(("uri", "says"), [
    ("localhost:8080/bff/callback", "must be an absolute http"),
    ("ftp://localhost/cb", "must be an absolute http"),
    ("http://localhost:8080", "needs the gateway's callback path"),
    ("http://localhost:8080/", "needs the gateway's callback path"),
    ("http://localhost:8080/cb?x=1", "no query"),
    ("http://localhost:8080/cb#f", "no #fragment"),
    ("http://u:p@localhost:8080/cb", "user name or password"),
    ("http://localhost:99999/cb", "port is not valid"),
    (" , ", "is empty"),
])
def test_bad_redirect_uris_are_refused_with_the_reason(uri: str, says: str) -> None:
    with pytest.raises(DevConfigError, match=says):
        parse_redirect_uris([uri])


def test_printed_config_loads_and_points_serve_at_the_dev_idp() -> None:
    text = render_config(ISSUER, "dev-secret-1234567890", "http://localhost:3000/auth/cb",
                         "http://127.0.0.1:4000")
    assert text.startswith(MARKER + "\n")
    assert "NOT FOR PRODUCTION" in text
    check_config(text)
    settings = load_settings(None, environ={}, overrides=tomllib.loads(text))
    assert settings.redirect_uri == "http://localhost:3000/auth/cb"
    assert settings.server.listen == "127.0.0.1:3000"
    assert settings.server.admin_listen == "127.0.0.1:3010"
    assert settings.oidc.issuer == ISSUER
    assert settings.oidc.client_secret.get() == "dev-secret-1234567890"
    assert settings.session.store == "memory"
    assert settings.cookie.secure is False and settings.cookie.name == "bffgate-dev"
    assert [(r.prefix, r.token) for r in settings.routes] == [("/api", "user")]


def test_every_print_has_fresh_cookie_keys() -> None:
    def keys(text: str) -> list[str]:
        return list(tomllib.loads(text)["cookie"]["secret_keys"])

    first = render_config(ISSUER, "s" * 24, "http://localhost:8080/bff/callback")
    second = render_config(ISSUER, "s" * 24, "http://localhost:8080/bff/callback")
    assert keys(first) != keys(second)
    assert len(keys(first)[0]) >= 32


def test_https_gateway_keeps_the_secure_host_cookie() -> None:
    text = render_config(ISSUER, "s" * 24, "https://app.localhost:8443/bff/callback")
    check_config(text)
    assert set(tomllib.loads(text)["cookie"]) == {"secret_keys"}  # defaults: __Host-, Secure


def test_config_that_would_not_load_names_the_key_and_the_flag() -> None:
    text = render_config(ISSUER, "s" * 24, "http://example.com/bff/callback")
    with pytest.raises(DevConfigError, match=r"server\.public_url: must use https") as err:
        check_config(text)
    assert "--redirect-uri" in str(err.value)


def test_write_config_is_owner_only_and_overwrites_only_its_own_file(tmp_path: Path) -> None:
    target = tmp_path / "dev.toml"
    text = render_config(ISSUER, "s" * 24, "http://localhost:8080/bff/callback")
    write_config(target, text)
    assert target.read_text() == text
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    write_config(target, text.replace("s" * 24, "t" * 24))  # ours: overwritten
    assert "t" * 24 in target.read_text()

    theirs = tmp_path / "bffgate.toml"
    theirs.write_text("[server]\n")
    with pytest.raises(DevConfigError, match="exists and was not written by"):
        write_config(theirs, text)
    assert theirs.read_text() == "[server]\n"


def test_cli_demo_flags() -> None:
    args = build_parser().parse_args([
        "demo", "--idp-only", "--port", "9500", "--redirect-uri", "http://localhost:1/cb",
        "--redirect-uri", "http://localhost:2/cb", "--write-config", "x.toml"])
    assert args.idp_only and args.port == 9500 and args.write_config == "x.toml"
    assert args.redirect_uri == ["http://localhost:1/cb", "http://localhost:2/cb"]
    assert build_parser().parse_args(["demo"]).port is None


def test_idp_only_flags_without_idp_only_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["demo", "--redirect-uri", "http://localhost:1/cb"])
    assert args.func(args) == 2
    assert "go with --idp-only" in capsys.readouterr().err
