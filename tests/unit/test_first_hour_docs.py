"""The first hour's documents stay true: README's first command uses a venv and states the
prerequisites, its SPA snippet logs in again only for the two session problems, the docs
name config/dev.toml and compose.yaml, and no coverage data is tracked."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_first_command_installs_into_a_venv() -> None:
    """Debian's python3 refuses `pip install` outside a venv (externally-managed-environment)."""
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line for line in first_block.splitlines() if line and not line.startswith("#")]
    assert commands[0] == ("python3 -m venv .venv && . .venv/bin/activate && pip install -e . "
                           "&& bffgate demo")
    assert commands[1] == "bash .ci/run"
    before = README.split("```sh", 1)[0]
    assert "Python ≥ 3.11" in before and "python3-venv" in before


def test_spa_snippet_logs_in_again_only_for_session_problems() -> None:
    """A missing X-CSRF (csrf-rejected) must not send the user to login: that loops."""
    snippet = README.split("```js", 1)[1].split("```", 1)[0]
    assert "problems/not-authenticated" in snippet and "problems/session-ended" in snippet
    assert "LOGIN_AGAIN.includes(problem.type)" in snippet
    assert "'X-CSRF': '1'" in snippet


def test_docs_name_dev_config_compose_and_troubleshooting() -> None:
    assert "config/dev.toml" in README and "(compose.yaml)" in README
    troubleshooting = README.split("## Troubleshooting", 1)[1].split("\n## ", 1)[0]
    for topic in ("redirect_uri", "127.0.0.1", "X-CSRF", "Safari", "clock"):
        assert topic in troubleshooting, topic
    run = re.search(r"docker run .*?\n  bffgate\n", README, re.DOTALL)
    assert run is not None
    for var in ("BFFGATE_CLIENT_SECRET", "BFFGATE_COOKIE_KEY", "BFFGATE_ADMIN_TOKEN",
                "BFFGATE_REDIS__URL"):
        assert var in run.group(0), var


def test_coverage_data_is_ignored_not_tracked() -> None:
    assert ".coverage" in (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    tracked = subprocess.run(["git", "ls-files", "--", ".coverage"], cwd=ROOT,
                             capture_output=True, text=True, check=True).stdout
    assert tracked == ""
