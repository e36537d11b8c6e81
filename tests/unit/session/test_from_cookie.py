"""Unit tests for SessionService.from_cookie: a session, or a typed reason why there is none."""

from __future__ import annotations

import secrets

from bffgate.clock import FrozenClock
from bffgate.crypto.cookie_codec import CookieCodec
from bffgate.session.model import LoadedSession, NewTokens, NoSession
from bffgate.session.service import SessionService
from bffgate.store.memory import MemoryStore

KEY = secrets.token_urlsafe(32)


def _service(clock: FrozenClock, key: str = KEY) -> SessionService:
    return SessionService(MemoryStore(), CookieCodec([key]), clock, idle_timeout=600,
                          absolute_timeout=3600, refresh_ahead=60)


async def _cookie(svc: SessionService, clock: FrozenClock) -> str:
    cookie, _ = await svc.create(NewTokens("at", "rt", None, clock.now() + 300), sub="alice",
                                 idp_sid=None, claims={})
    return cookie


async def test_a_live_session() -> None:
    clock = FrozenClock()
    svc = _service(clock)
    found = await svc.from_cookie(await _cookie(svc, clock))
    assert isinstance(found, LoadedSession) and found.data.sub == "alice"


async def test_no_cookie() -> None:
    svc = _service(FrozenClock())
    assert await svc.from_cookie(None) is NoSession.NO_COOKIE
    assert await svc.from_cookie("") is NoSession.NO_COOKIE


async def test_a_tampered_or_foreign_cookie_is_invalid() -> None:
    clock = FrozenClock()
    svc = _service(clock)
    cookie = await _cookie(svc, clock)
    assert await svc.from_cookie(cookie[:-1] + ("A" if cookie[-1] != "A" else "B")) \
        is NoSession.COOKIE_INVALID
    assert await svc.from_cookie("garbage") is NoSession.COOKIE_INVALID
    other = _service(clock, secrets.token_urlsafe(32))  # signed with a key we don't know
    assert await svc.from_cookie(await _cookie(other, clock)) is NoSession.COOKIE_INVALID


async def test_a_session_that_ended_is_unknown() -> None:
    clock = FrozenClock()
    svc = _service(clock)
    cookie = await _cookie(svc, clock)
    clock.advance(601)  # idle timeout
    assert await svc.from_cookie(cookie) is NoSession.SESSION_UNKNOWN
    assert NoSession.SESSION_UNKNOWN.value == "session_unknown"
