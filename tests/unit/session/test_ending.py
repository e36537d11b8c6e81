"""Unit tests for end_sessions: the one way sessions end, audited per session."""

from __future__ import annotations

import secrets

from structlog.testing import capture_logs

from bffgate.clock import FrozenClock
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.session.ending import ById, BySid, BySub, end_sessions
from bffgate.session.model import LoadedSession, NewTokens
from bffgate.session.service import SessionService
from bffgate.store.memory import MemoryStore


class _Service(SessionService):
    """A SessionService that shows the tests its store."""

    def __init__(self) -> None:
        clock = FrozenClock()
        self.store = MemoryStore(clock)
        super().__init__(self.store, CookieCodec([secrets.token_urlsafe(32)]), clock,
                         idle_timeout=600, absolute_timeout=3600, refresh_ahead=60)


def _service() -> _Service:
    return _Service()


async def _session(svc: SessionService, sub: str, sid: str | None) -> LoadedSession:
    _, s = await svc.create(NewTokens("at", "rt", None, None), sub=sub, idp_sid=sid, claims={})
    return s


def _events(logs: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in logs if e.get("event") == name]


async def test_every_session_of_a_subject_ends_each_audited() -> None:
    svc = _service()
    a, b = await _session(svc, "bob", "s1"), await _session(svc, "bob", "s2")
    other = await _session(svc, "carol", None)
    with capture_logs() as logs:
        assert await end_sessions(svc.store, BySub("bob"), reason="admin") == 2
    revoked = _events(logs, "session.revoked")
    assert sorted(e["session"] for e in revoked) == sorted([a.handle.short, b.handle.short])
    assert {e["reason"] for e in revoked} == {"admin"}
    assert await svc.load(a.handle) is None and await svc.load(b.handle) is None
    assert await svc.load(other.handle) is not None
    assert await svc.store.keys_for_idp_sid("s1") == []


async def test_an_idp_session_ends_each_of_its_sessions_audited() -> None:
    """Back-channel logout: before, it deleted in a loop of its own and audited only a count."""
    svc = _service()
    a, b = await _session(svc, "bob", "idp-1"), await _session(svc, "bob", "idp-1")
    keep = await _session(svc, "bob", "idp-2")
    with capture_logs() as logs:
        assert await end_sessions(svc.store, BySid("idp-1", "bob"), reason="backchannel") == 2
    assert len(_events(logs, "session.revoked")) == 2
    assert await svc.store.keys_for_sub("bob") == [keep.key]
    assert await svc.load(a.handle) is None and await svc.load(b.handle) is None


async def test_one_session_by_key_and_nothing_twice() -> None:
    svc = _service()
    s = await _session(svc, "bob", None)
    assert await end_sessions(svc.store, ById(s.key), reason="cli") == 1
    with capture_logs() as logs:
        assert await end_sessions(svc.store, ById(s.key), reason="cli") == 0
    assert _events(logs, "session.revoked") == []


async def test_a_presented_session_revokes_its_refresh_token() -> None:
    svc = _service()
    s = await _session(svc, "bob", None)
    revoked: list[str] = []

    async def revoke(token: str) -> bool:
        assert await svc.load(s.handle) is None  # deleted first: the cookie is dead already
        revoked.append(token)
        return True

    with capture_logs() as logs:
        assert await end_sessions(svc.store, s, reason="logout", revoke=revoke) == 1
    assert revoked == ["rt"]
    [ended] = _events(logs, "session.ended")
    assert ended["reason"] == "logout" and ended["detail"] == "refresh_token_revoked=True"


async def test_a_presented_session_can_keep_its_refresh_token() -> None:
    svc = _service()
    s = await _session(svc, "bob", None)
    with capture_logs() as logs:
        await end_sessions(svc.store, s, reason="relogin", revoke=None)
    [ended] = _events(logs, "session.ended")
    assert str(ended["detail"]).startswith("refresh_token_revoked=False (kept")
