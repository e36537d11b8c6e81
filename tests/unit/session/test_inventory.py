"""Unit tests for the admin view of sessions (session/inventory.py) and the record's admin
fields (session/record.py): ids, last_seen_at from the idle TTL, refresh bookkeeping, the
per-user limit, and records written before these fields existed."""

from __future__ import annotations

import json
import secrets

import pytest
from structlog.testing import capture_logs

from bffgate.clock import FrozenClock
from bffgate.crypto.cookie_codec import CookieCodec, SessionHandle
from bffgate.crypto.sealing import seal
from bffgate.session.ending import ById, end_sessions
from bffgate.session.inventory import (
    SessionInventory,
    admin_id,
    hashed_sid,
    parse_admin_id,
    rfc3339,
)
from bffgate.session.model import LoadedSession, NewTokens, SessionOrigin
from bffgate.session.record import (
    decode_session,
    encode_session,
    legacy_admin_id,
    read_facts,
)
from bffgate.session.service import SessionService
from bffgate.store.memory import MemoryStore

T0 = 1_800_000_000.0
IDLE, ABSOLUTE = 600, 3600


class _Env:
    def __init__(self) -> None:
        self.clock = FrozenClock(T0)
        self.store = MemoryStore(self.clock)
        self.codec = CookieCodec([secrets.token_urlsafe(32)])
        self.svc = SessionService(self.store, self.codec, self.clock, idle_timeout=IDLE,
                                  absolute_timeout=ABSOLUTE, refresh_ahead=60)
        self.inv = SessionInventory(self.store, idle_timeout=IDLE)

    async def login(self, sub: str = "alice", ip: str | None = "10.0.0.1",
                    ua: str | None = "Firefox/1", sid: str | None = "idp-sid-1"
                    ) -> tuple[str, LoadedSession]:
        return await self.svc.create(NewTokens("at-SECRET", "rt-SECRET", "it-SECRET", T0 + 300),
                                     sub=sub, idp_sid=sid, claims={"sub": sub},
                                     origin=SessionOrigin.of(ip, ua))


@pytest.fixture
def env() -> _Env:
    return _Env()


async def test_two_sessions_listed_oldest_first_with_their_origin(env: _Env) -> None:
    cookie_a, a = await env.login(ip="10.0.0.1", ua="Firefox/1")
    env.clock.advance(5)
    cookie_b, b = await env.login(ip="10.0.0.2", ua="Chrome/2")
    await env.login(sub="bob")
    views = await env.inv.of_sub("alice", env.clock.now())
    docs = [v.to_json() for v in views]
    assert [d["client_ip"] for d in docs] == ["10.0.0.1", "10.0.0.2"]
    assert [d["user_agent"] for d in docs] == ["Firefox/1", "Chrome/2"]
    assert docs[0]["created_at"] == rfc3339(T0) == "2027-01-15T08:00:00.000Z"
    assert docs[1]["expires_at"] == rfc3339(T0 + 5 + ABSOLUTE)
    assert docs[0]["idp_sid"] == hashed_sid("idp-sid-1") != "idp-sid-1"
    assert docs[0]["refreshed_at"] is None and docs[0]["refresh_count"] == 0
    assert set(docs[0]) == {"id", "sub", "created_at", "last_seen_at", "expires_at",
                            "idle_expires_at", "refreshed_at", "refresh_count", "client_ip",
                            "user_agent", "idp_sid", "audit_session"}
    assert docs[0]["id"] != docs[1]["id"]
    # the link to the audit log: its events carry session = the key's first 16 hex digits
    assert [d["audit_session"] for d in docs] == [a.handle.short, b.handle.short]
    text = json.dumps(docs)
    for secret in (cookie_a, cookie_b, a.key, b.key, "SECRET",
                   a.handle.session_id.hex(), a.handle.secret.hex()):
        assert secret not in text


async def test_an_id_finds_its_session_and_nothing_else(env: _Env) -> None:
    _, a = await env.login()
    view = (await env.inv.of_sub("alice", env.clock.now()))[0]
    found = await env.inv.by_id(view.id, env.clock.now())
    assert found is not None and found.key == a.key
    handle, sub = parse_admin_id(view.id) or ("", "")
    assert sub == "alice" and handle == a.data.admin_id
    for bad in ("", "nodot", ".YWxpY2U", handle + ".", handle + ".!!", handle + ".YWxpY2U=",
                admin_id("x" * 22, "alice"), admin_id(handle, "bob")):
        assert await env.inv.by_id(bad, env.clock.now()) is None, bad


def test_ids_round_trip_any_sub() -> None:
    for sub in ("alice", "ü/ñ?#.x", "a" * 300, "248289761001"):
        assert parse_admin_id(admin_id("h", sub)) == ("h", sub)


async def test_last_seen_is_the_last_slide_while_the_idle_window_binds(env: _Env) -> None:
    _, a = await env.login()
    view = (await env.inv.of_sub("alice", env.clock.now()))[0]
    assert view.last_seen_at == T0 and view.idle_expires_at == T0 + IDLE
    env.clock.advance(100)
    assert await env.svc.load(a.handle) is not None  # a request: the load slides the TTL
    env.clock.advance(50)
    view = (await env.inv.of_sub("alice", env.clock.now()))[0]
    assert view.last_seen_at == pytest.approx(T0 + 100)
    assert view.idle_expires_at == pytest.approx(T0 + 100 + IDLE)
    # Listing is no request: the TTL did not move.
    again = (await env.inv.of_sub("alice", env.clock.now()))[0]
    assert again.idle_expires_at == view.idle_expires_at


async def test_last_seen_is_a_lower_bound_once_the_absolute_expiry_binds(env: _Env) -> None:
    _, a = await env.login()
    for _ in range(6):  # stay active: every 500 s, under the 600 s idle timeout
        env.clock.advance(500)
        assert await env.svc.load(a.handle) is not None
    env.clock.advance(100)  # T0 + 3100: the last slide at T0 + 3000 was capped by absolute
    view = (await env.inv.of_sub("alice", env.clock.now()))[0]
    assert view.last_seen_at == pytest.approx(T0 + ABSOLUTE - IDLE)
    assert view.idle_expires_at == pytest.approx(T0 + ABSOLUTE)


async def test_a_refresh_is_dated_and_counted(env: _Env) -> None:
    _, a = await env.login()
    env.clock.advance(240)
    b = await env.svc.replace_tokens(a, NewTokens("at2-SECRET", None, None, T0 + 600))
    assert b is not None
    env.clock.advance(60)
    c = await env.svc.replace_tokens(b, NewTokens("at3-SECRET", None, None, T0 + 900))
    assert c is not None and c.data.refresh_count == 2
    view = (await env.inv.of_sub("alice", env.clock.now()))[0]
    assert view.to_json()["refreshed_at"] == rfc3339(T0 + 300)
    assert view.to_json()["refresh_count"] == 2
    assert view.last_seen_at == pytest.approx(T0 + 300)  # the replace slid the TTL too
    assert view.id == admin_id(a.data.admin_id, "alice")  # the id survives a refresh


async def test_a_record_of_the_old_format_still_loads_and_lists(env: _Env) -> None:
    """Written by a gateway before the admin fields: no aid, ip, ua, rfa, rfn."""
    handle = SessionHandle.new()
    tokens = json.dumps({"at": "at-SECRET", "rt": "rt-SECRET", "it": None}).encode()
    doc = {"v": 1, "sub": "alice", "sid": None, "claims": {"sub": "alice"}, "created": T0,
           "abs": T0 + ABSOLUTE, "logout": "old-logout-id", "exp": T0 + 300, "rat": T0 + 240,
           "sealed": seal(handle.secret, tokens, handle.key.encode())}
    raw = json.dumps(doc).encode()
    data = decode_session(handle, raw)
    assert data.tokens.access_token == "at-SECRET"
    assert data.admin_id == legacy_admin_id("old-logout-id")
    assert len(data.admin_id) == 22 and data.origin is None and data.refresh_count == 0
    facts = read_facts(raw)
    assert facts.admin_id == data.admin_id and facts.origin is None
    await env.store.create_session(handle.key, raw, now_ms=int(T0 * 1000),
                                   idle_ms=IDLE * 1000,
                                   absolute_expiry_ms=int((T0 + ABSOLUTE) * 1000),
                                   sub="alice", idp_sid=None)
    view = (await env.inv.of_sub("alice", env.clock.now()))[0]
    assert view.to_json()["client_ip"] is None and view.to_json()["idp_sid"] is None
    assert (await env.inv.by_id(view.id, env.clock.now())) is not None
    # Re-encoded (a refresh by the new gateway): the derived handle is kept as its own.
    again = json.loads(encode_session(handle, data))
    assert again["aid"] == data.admin_id and "ip" not in again


async def test_new_fields_survive_encode_and_decode(env: _Env) -> None:
    _, a = await env.login(ip="2001:db8::1", ua="x" * 1000)
    raw = encode_session(a.handle, a.data)
    back = decode_session(a.handle, raw)
    assert back.admin_id == a.data.admin_id
    assert back.origin == SessionOrigin("2001:db8::1", "x" * 256)
    assert read_facts(raw).origin == back.origin
    doc = json.loads(raw)
    assert "SECRET" not in json.dumps({k: v for k, v in doc.items() if k != "sealed"})


async def test_evict_beyond_ends_the_oldest_but_never_the_new_one(env: _Env) -> None:
    sessions = []
    for i in range(3):
        sessions.append((await env.login(ip=f"10.0.0.{i}"))[1])
        env.clock.advance(10)
    with capture_logs() as logs:
        n = await env.inv.evict_beyond("alice", 2, keep=sessions[2].key, now=env.clock.now())
    assert n == 1
    assert await env.svc.load(sessions[0].handle) is None
    assert await env.svc.load(sessions[1].handle) is not None
    evicted = [e for e in logs if e["event"] == "session.evicted"]
    assert evicted == [{"event": "session.evicted", "log_level": "info", "audit": True,
                        "reason": "max_per_user", "session": sessions[0].key[:16],
                        "sub": "alice"}]
    assert await env.store.keys_for_sub("alice") == sorted(s.key for s in sessions[1:])
    assert await env.inv.evict_beyond("alice", 0, keep="", now=env.clock.now()) == 0
    assert await env.inv.evict_beyond("alice", 1, keep=sessions[1].key,
                                      now=env.clock.now()) == 0  # only older ones go
    assert await env.inv.evict_beyond("alice", 1, keep=sessions[2].key,
                                      now=env.clock.now()) == 1
    assert await env.svc.load(sessions[1].handle) is None
    assert await env.svc.load(sessions[2].handle) is not None


async def test_end_by_id_with_sub_drops_the_index_entry(env: _Env) -> None:
    _, a = await env.login()
    with capture_logs() as logs:
        assert await end_sessions(env.store, ById(a.key, "alice"), reason="admin") == 1
    assert [e["event"] for e in logs] == ["session.revoked"]
    assert "sub:alice" not in env.store._index or not env.store._index["sub:alice"]


async def test_two_logins_at_once_never_evict_each_other(env: _Env) -> None:
    """Both logins check the limit after both were stored: the earlier one ends nothing
    newer than itself, the later one ends the earlier."""
    _, a = await env.login()
    env.clock.advance(1)
    _, b = await env.login()
    assert await env.inv.evict_beyond("alice", 1, keep=a.key, now=env.clock.now()) == 0
    assert await env.inv.evict_beyond("alice", 1, keep=b.key, now=env.clock.now()) == 1
    assert await env.svc.load(a.handle) is None
    assert await env.svc.load(b.handle) is not None
