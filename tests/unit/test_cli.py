"""Unit tests for the first run of the CLI: help text, where --config may go, check-config
without a file and with the shipped example plus the variables its header documents."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bffgate.cli import build_parser, main
from bffgate.config import ConfigError, load_settings

EXAMPLE = Path(__file__).resolve().parents[2] / "config" / "bffgate.example.toml"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No BFFGATE_* from the developer's shell; run from an empty directory."""
    import os

    for name in [k for k in os.environ if k.startswith("BFFGATE_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def _documented_env() -> dict[str, str]:
    """The `export NAME=...` lines of the example's header, each given a usable value."""
    header = EXAMPLE.read_text(encoding="utf-8").split("[server]", 1)[0]
    names = re.findall(r"^#\s+export (\w+)=", header, flags=re.MULTILINE)
    return {name: f"{name.lower()}-" + "v" * 40 for name in names}


def _help_texts() -> list[str]:
    parser = build_parser()
    texts = [parser.format_help()]
    sub = next(a for a in parser._actions if a.dest == "command")
    for name, sp in sub.choices.items():  # type: ignore[union-attr]
        texts.append(sp.format_help())
        if name == "sessions":
            inner = next(a for a in sp._actions if a.dest == "action")
            texts.extend(p.format_help() for p in inner.choices.values())  # type: ignore[union-attr]
    return texts


def test_help_shows_no_rest_markup() -> None:
    """--help of every command is plain text: no ``double backticks`` from docstrings."""
    for text in _help_texts():
        assert "``" not in text, text


def test_demo_help_names_every_port_it_takes() -> None:
    """`bffgate demo --help` says which ports besides --port the demo listens on."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = " ".join(sub.choices["demo"].format_help().split())  # type: ignore[union-attr]
    for port in ("PORT+1 (identity provider)", "PORT+2 (demo API)", "PORT+3 (demo page)",
                 "PORT+10 (admin"):
        assert port in text, port
    assert "/metrics" in text


@pytest.mark.parametrize("argv", [
    ["--config", "X", "sessions", "list", "--sub", "alice"],
    ["sessions", "--config", "X", "list", "--sub", "alice"],
    ["sessions", "list", "--sub", "alice", "--config", "X"],
    ["sessions", "revoke", "--sub", "alice", "--config", "X"],
    ["--config", "X", "serve"],
    ["serve", "--config", "X"],
    ["check-config", "--config", "X"],
    ["--config", "X", "doctor"],
    ["doctor", "--config", "X"],
])
def test_config_is_accepted_before_or_after_the_command(argv: list[str]) -> None:
    """--config works wherever a user puts it, for every command that reads a config."""
    assert build_parser().parse_args(argv).config == "X"


def test_no_config_option_means_none() -> None:
    """A later (absent) --config never resets an earlier one, and absent everywhere is None."""
    assert build_parser().parse_args(["sessions", "list", "--sub", "a"]).config is None


def test_check_config_without_a_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """No config/bffgate.toml and no BFFGATE_* variables: one line saying what to copy."""
    assert main(["check-config"]) == 1
    err = capsys.readouterr().err
    assert err == ("bffgate: no config file at config/bffgate.toml "
                   "(copy config/bffgate.example.toml)\n")


def test_check_config_with_a_missing_named_file(capsys: pytest.CaptureFixture[str]) -> None:
    """--config naming a file that isn't there: the same one line, with that path."""
    assert main(["check-config", "--config", "nope.toml"]) == 1
    assert capsys.readouterr().err == (
        "bffgate: no config file at nope.toml (copy config/bffgate.example.toml)\n")


def test_the_example_passes_as_shipped_with_the_documented_env(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """cp config/bffgate.example.toml config/bffgate.toml + the header's exports = OK."""
    env = _documented_env()
    assert set(env) == {"BFFGATE_CLIENT_SECRET", "BFFGATE_COOKIE_KEY", "BFFGATE_ADMIN_TOKEN"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    Path("config").mkdir()
    Path("config/bffgate.toml").write_text(EXAMPLE.read_text(encoding="utf-8"))
    assert main(["check-config"]) == 0, capsys.readouterr().err
    assert capsys.readouterr().out.startswith("configuration OK: 3 route(s)")


def test_the_example_names_each_missing_variable_once() -> None:
    """Without the variables: exactly one line per variable (not also "too short"/"required")."""
    with pytest.raises(ConfigError) as info:
        load_settings(EXAMPLE, environ={})
    assert info.value.messages == [
        "server.admin_token: environment variable BFFGATE_ADMIN_TOKEN "
        "(from env:BFFGATE_ADMIN_TOKEN) is not set",
        "oidc.client_secret: environment variable BFFGATE_CLIENT_SECRET "
        "(from env:BFFGATE_CLIENT_SECRET) is not set",
        "cookie.secret_keys[0]: environment variable BFFGATE_COOKIE_KEY "
        "(from env:BFFGATE_COOKIE_KEY) is not set",
    ]


def test_a_short_key_from_a_set_variable_is_still_reported() -> None:
    """The de-duplication only hides consequences: a set but short key is still refused."""
    env = {**_documented_env(), "BFFGATE_COOKIE_KEY": "short"}
    with pytest.raises(ConfigError) as info:
        load_settings(EXAMPLE, environ=env)
    assert info.value.messages == [
        "cookie.secret_keys[0]: too short: use at least 32 random characters"]


def test_a_typo_in_an_override_names_the_variable() -> None:
    """BFFGATE_OIDC__ISUER: the message names the variable to fix and the key it meant."""
    env = {**_documented_env(), "BFFGATE_OIDC__ISUER": "https://idp.example.com"}
    with pytest.raises(ConfigError) as info:
        load_settings(EXAMPLE, environ=env)
    assert len(info.value.messages) == 1
    assert info.value.messages[0].startswith(
        "BFFGATE_OIDC__ISUER: unknown key oidc.isuer (known: client_auth, ")


def test_one_underscore_is_not_an_override() -> None:
    """BFFGATE_OIDC_CLIENT_SECRET (one underscore) is only read through env:; it overrides
    nothing by itself, while BFFGATE_OIDC__CLIENT_SECRET (two) does."""
    env = {**_documented_env(), "BFFGATE_OIDC_CLIENT_SECRET": "one-underscore"}
    assert load_settings(EXAMPLE, environ=env).oidc.client_secret.get() != "one-underscore"
    env["BFFGATE_OIDC__CLIENT_SECRET"] = "two-underscores"
    assert load_settings(EXAMPLE, environ=env).oidc.client_secret.get() == "two-underscores"


def test_environment_only_configuration_still_works(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A container configured only by BFFGATE_<SECTION>__<KEY> needs no file."""
    for name, value in {
        "BFFGATE_SERVER__PUBLIC_URL": "https://app.example.com",
        "BFFGATE_OIDC__ISSUER": "https://idp.example.com",
        "BFFGATE_OIDC__CLIENT_ID": "bffgate", "BFFGATE_OIDC__CLIENT_SECRET": "s",
        "BFFGATE_COOKIE__SECRET_KEYS": "k" * 32,
        "BFFGATE_ROUTES": '[{"prefix": "/api", "upstream": "http://api:8000", "token": "user"}]',
    }.items():
        monkeypatch.setenv(name, value)
    assert main(["check-config"]) == 0, capsys.readouterr().err


def test_demo_takes_no_config(capsys: pytest.CaptureFixture[str]) -> None:
    """`bffgate --config X demo` says the demo ignores no file silently: it refuses."""
    assert main(["--config", "X", "demo"]) == 2
    assert "takes no --config" in capsys.readouterr().err


def test_sessions_on_a_memory_store_says_where_they_are(
        capsys: pytest.CaptureFixture[str]) -> None:
    """session.store = memory: the CLI cannot see them; it says so instead of "none"."""
    env = _documented_env()
    Path("m.toml").write_text(EXAMPLE.read_text(encoding="utf-8")
                              .replace('store = "redis"', 'store = "memory"'))
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        assert main(["sessions", "list", "--sub", "alice", "--config", "m.toml"]) == 1
    assert "session.store is memory" in capsys.readouterr().err
