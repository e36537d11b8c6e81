"""Unit tests of `bffgate probe`'s command line: --config before or after the command, and
usage or configuration errors exit 2 (with the one JSON line under --json)."""

from __future__ import annotations

import json

import pytest

from bffgate.cli import build_parser, main


@pytest.mark.parametrize("argv", [
    ["--config", "X", "probe"],
    ["probe", "--config", "X"],
    ["probe", "--json", "--user", "u", "--password-file", "p", "--config", "X"],
])
def test_config_is_accepted_before_or_after_probe(argv: list[str]) -> None:
    assert build_parser().parse_args(argv).config == "X"


def test_missing_config_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--json", "--config", "nope.toml"]) == 2
    out, err = capsys.readouterr()
    assert err == ("bffgate probe: no config file at nope.toml "
                   "(copy config/bffgate.example.toml)\n")
    doc = json.loads(out)
    assert doc["ok"] is False and doc["checks"][0]["name"] == "usage"


@pytest.mark.parametrize(("argv", "message"), [
    pytest.param(["--user", "u"], "--user and --password-file go together", id="user-alone"),
    pytest.param(["--password-file", "p"], "--user and --password-file go together",
                 id="password-alone"),
    pytest.param(["--timeout", "0"], "--timeout must be positive", id="timeout"),
])
def test_usage_errors_exit_2(argv: list[str], message: str,
                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["probe", "--config", "nope.toml", *argv]) == 2
    out, err = capsys.readouterr()
    assert message in err and out == ""


def test_empty_password_file_exits_2(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # type: ignore[no-untyped-def]
    pw = tmp_path / "pw"
    pw.write_text("\n")
    assert main(["probe", "--config", "nope.toml", "--user", "u", "--password-file",
                 str(pw)]) == 2
    assert "is empty" in capsys.readouterr().err
