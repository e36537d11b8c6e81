"""pytest plugin: every audit event the test suite makes is validated, and a test fails on
an unknown field, a missing required one or a wrong type.

Two sources: in-process logging (the run configures bffgate's real pipeline, JSON at
level debug, into a stream that checks each line and passes it on to whatever sys.stdout
is at that moment, so capsys and pytest's capture still see it) and the output files of
every child process (``support.processes.CHILD_LOGS``: each ``bffgate serve`` gateway,
CLI run, ...), read incrementally. After each test the lines written since the previous
check are validated; a bad line fails that test in its teardown (a line a long-lived
gateway writes late is reported with the next test), and the run's end sweeps what is
left. JSON-form events (``"audit": true``) are checked against the package's own
``bffgate/audit_schema.json`` (draft 2020-12, the jsonschema package); OCSF records
(``class_uid`` 3002, ``log.audit_format = "ocsf"``) against the OCSF schema's class
(support.ocsf_check).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest

from support.processes import CHILD_LOGS

CHECKED = [0]  # audit lines validated in this run


@cache
def validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = json.loads(files("bffgate").joinpath("audit_schema.json").read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def line_errors(line: str) -> list[str]:
    """What is wrong with one output line, if it is an audit event (else nothing)."""
    line = line.strip()
    if not line.startswith("{") or ('"audit"' not in line and '"class_uid"' not in line):
        return []
    try:
        record = json.loads(line)
    except ValueError:
        return []
    if not isinstance(record, dict):
        return []
    if record.get("class_uid") == 3002 and "metadata" in record:
        from support import ocsf_check

        CHECKED[0] += 1
        return [f"OCSF {e}" for e in ocsf_check.errors(record)]
    if record.get("audit") is not True:
        return []
    CHECKED[0] += 1
    found = sorted(validator().iter_errors(record), key=lambda e: list(e.absolute_path))
    return [f"{record.get('event')}: {e.message}" for e in found]


class CheckedStream:
    """The in-process log stream: validates each line, then writes it to sys.stdout."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.lines = 0

    def write(self, text: str) -> int:
        for line in text.splitlines():
            self.lines += 1
            self.problems += [f"{p}\n    line: {line}" for p in line_errors(line)]
        return sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


class FileTail:
    """The complete lines appended to the children's output files since the last look."""

    def __init__(self, paths: list[Path] = CHILD_LOGS) -> None:
        self.paths = paths
        self.offsets: dict[Path, int] = {}
        self.lines = 0

    def problems(self) -> list[str]:
        out: list[str] = []
        for path in list(self.paths):
            try:
                size = path.stat().st_size
            except OSError:
                continue
            start = self.offsets.get(path, 0)
            if size <= start:
                continue
            with path.open("rb") as f:
                f.seek(start)
                data = f.read(size - start)
            end = data.rfind(b"\n") + 1  # a line still being written waits for next time
            self.offsets[path] = start + end
            for raw in data[:end].decode("utf-8", "replace").splitlines():
                self.lines += 1
                out += [f"{p}\n    {path.name}: {raw}" for p in line_errors(raw)]
        return out


_STREAM = CheckedStream()
_FILES = FileTail()
_LEFTOVERS: list[str] = []


def _install() -> None:
    from bffgate import logs

    if logs.configured_stream() is not _STREAM:
        logs.configure_logging("debug", "json", stream=_STREAM)  # type: ignore[arg-type]


def _collect() -> list[str]:
    problems = _STREAM.problems + _FILES.problems()
    _STREAM.problems = []
    return problems


def pytest_sessionstart(session: pytest.Session) -> None:
    _install()


@pytest.fixture(autouse=True)
def _audit_events_match_the_schema() -> Iterator[None]:
    """Before: bffgate's pipeline logs in-process (again, if a test reconfigured it).
    After: every audit line written meanwhile, here or by a child, matches the schema."""
    _install()
    _LEFTOVERS.extend(_collect())  # written between tests: reported at the end of the run
    yield
    problems = _collect()
    if problems:
        pytest.fail("audit events that do not match bffgate/audit_schema.json:\n"
                    + "\n".join(problems[:20]), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    problems = _LEFTOVERS + _collect()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter:
        reporter.write_line(f"audit schema check: {CHECKED[0]} audit events validated (of "
                            f"{_STREAM.lines} in-process and {_FILES.lines} child-process output "
                            f"lines); {len(problems)} bad one(s) outside a test")
        for problem in problems[:50]:
            reporter.write_line(f"AUDIT SCHEMA: {problem}", red=True)
    if problems:
        session.exitstatus = 1
