"""The audit field catalogue holds only fields the gateway writes: each one is passed to
``audit.emit`` or bound into the log context somewhere under src/ (a declared field nothing
emits is a schema promise nobody keeps)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bffgate import audit

SRC = Path(__file__).resolve().parents[2] / "src" / "bffgate"
_WRITERS = {"emit", "bind_contextvars", "bind_request"}


def written_fields(root: Path) -> set[str]:
    """Keyword names of every ``emit(...)`` / ``bind_contextvars(...)`` / ``bind_request(...)``
    call under root."""
    names: set[str] = set()
    for path in root.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in _WRITERS:
                names.update(k.arg for k in node.keywords if k.arg and k.arg != "level")
    return names


def test_every_declared_audit_field_is_written() -> None:
    assert not audit.FIELDS - written_fields(SRC)


def test_every_written_audit_field_is_declared() -> None:
    assert not written_fields(SRC) - audit.FIELDS


def test_emit_refuses_an_undeclared_field() -> None:
    with pytest.raises(ValueError, match="idp_error"):
        audit.emit(audit.AuditEvent.LOGIN_FAILED, reason="x", idp_error="access_denied")


def test_written_fields_sees_emit_and_context_binding(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text(
        "audit.emit(E.X, level='info', reason='r')\n"
        "structlog.contextvars.bind_contextvars(request_id='1')\n"
        "other(upstream='u')\n")
    assert written_fields(tmp_path) == {"reason", "request_id"}
