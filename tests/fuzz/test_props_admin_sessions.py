"""Property tests: the admin sessions API (endpoints/admin_api.py) on the admin app in-process
(no sockets; the memory store, then a real redis-server), for any request an operator's tool or an attacker on the admin
network can send: the ``{id}`` and ``{sub}`` path segments and the ``sub`` query parameter
percent-encoded or not, doubled, empty, huge, not UTF-8, holding slashes or dot segments,
paths spelled oddly, and the bearer header in every shape.

Every answer is JSON (2xx) or a 4xx application/problem+json, never a 5xx or a traceback;
without the exact bearer a protected path is a 401 with ``WWW-Authenticate``; a refused
request ends no session, a read ends none, a DELETE ends only sessions the request names
(by their sub or id as the API decodes it) and says how many; every refusal is audited
(one ``request.rejected`` with its status); no cookie, token, store key,
IdP sid or the admin token itself appears in any answer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from bffgate.app import Gateway
from bffgate.config import load_settings
from bffgate.session.model import NewTokens, SessionOrigin
from support.redis import RedisServer

pytestmark = pytest.mark.fuzz

TOKEN = "admin-" + secrets.token_urlsafe(24)
COOKIE_KEY = secrets.token_urlsafe(32)
CLIENT_SECRET = "s" * 24
# Subjects an IdP may issue, some of them spelled like the API's own syntax.
SUBS = ["alice", "a/b", "a%2Fb", "x.y", "\u00fc ber", "..", "bob+1", "sessions"]
GUARDED = ("/admin", "/metrics")


@dataclass(repr=False)
class Live:
    sub: str
    cookie: str
    key: str
    admin_id: str
    secrets: list[str] = field(default_factory=list)


@dataclass(repr=False)
class App:
    loop: asyncio.AbstractEventLoop
    gw: Gateway
    live: list[Live]

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    async def login(self, sub: str) -> Live:
        marker = secrets.token_hex(8)
        tokens = NewTokens(f"at-{marker}", f"rt-{marker}", f"it-{marker}",
                           self.gw.clock.now() + 3600)
        cookie, loaded = await self.gw.sessions.create(
            tokens, sub=sub, idp_sid=f"sid-{marker}", claims={"sub": sub},
            origin=SessionOrigin("10.0.0.1", "fuzz-agent"))
        views = await self.gw.inventory.of_sub(sub, self.gw.clock.now())
        view = next(v for v in views if v.key == loaded.key)
        # (the key's first 16 hex are shown on purpose: audit_session, the audit log's name)
        return Live(sub, cookie, loaded.key, view.id,
                    [cookie, loaded.key, f"sid-{marker}", marker])

    async def alive(self) -> set[str]:
        """The store keys of the sessions still there."""
        keys = [s.key for s in self.live]
        peeked = await self.gw.store.peek_sessions(keys)
        return {k for k, p in zip(keys, peeked, strict=True) if p is not None}

    async def restore(self) -> None:
        """Log in again every session an earlier example ended."""
        there = await self.alive()
        self.live = [s if s.key in there else await self.login(s.sub) for s in self.live]


@pytest.fixture(scope="module", params=["memory", "redis"])
def app(request: pytest.FixtureRequest) -> Iterator[App]:
    with contextlib.ExitStack() as stack:
        store: dict[str, Any] = {"session": {"store": "memory"}}
        if request.param == "redis":
            redis = stack.enter_context(RedisServer().start())
            store = {"session": {"store": "redis"}, "redis": {"url": redis.url}}
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        settings = load_settings(None, environ={}, overrides={
            "server": {"public_url": "https://app.test", "admin_token": TOKEN},
            "oidc": {"issuer": "https://idp.test", "client_id": "bff",
                     "client_secret": CLIENT_SECRET},
            "cookie": {"secret_keys": [COOKIE_KEY]}, **store,
            "routes": [{"prefix": "/api", "upstream": "http://upstream.invalid",
                        "token": "user"}],
        })
        gw = Gateway(settings)
        loop.run_until_complete(gw.start(warm_idp=False))
        stack.callback(lambda: loop.run_until_complete(gw.stop()))
        a = App(loop, gw, [])
        for sub in SUBS:
            a.live.append(a.run(a.login(sub)))
        a.live.append(a.run(a.login("alice")))  # two sessions of one user
        yield a


@dataclass
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes

    def header(self, name: bytes) -> bytes | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


async def call(app: Any, method: str, raw_path: bytes, query: bytes,
               headers: list[tuple[bytes, bytes]]) -> Answer:
    """One request as uvicorn hands it over: ``path`` is the percent-decoded raw path."""
    text = raw_path.decode("ascii")
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http",
             "path": unquote(text) if "%" in text else text, "raw_path": raw_path,
             "query_string": query, "root_path": "",
             "headers": [(b"host", b"127.0.0.1:9091"), *headers],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 9091)}
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if not sent:
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent and sent[0]["type"] == "http.response.start"
    return Answer(sent[0]["status"], list(sent[0]["headers"]),
                  b"".join(m.get("body", b"") for m in sent[1:]))


# -- what a request is made of -------------------------------------------------------------

def _spellings(value: str) -> st.SearchStrategy[str]:
    """``value`` as a path segment or query value: encoded fully, with '/' left alone,
    with lower-case escapes, twice, or as raw as a request target allows ('%' kept)."""
    once = quote(value, safe="")
    return st.sampled_from([once, quote(value, safe="/"), once.lower(), quote(once, safe=""),
                            quote(value, safe="/%+;.~")])


ODD = ["", ".", "..", "%2e", "%2e%2e", "%2E%2E", "%2f", "%2F", "/", "//", "%00", "%ff",
       "%c0%ae", "%ff%fe%fd", "%e2%82", "%", "%zz", "%25", "%2525", "+", "%20", ";", "..;",
       "a" * 5000, "%41" * 2000, "~", "\\", "%5c", "?", "%3f", "#", "%23"]


@st.composite
def segments(draw: st.DrawFn, app: App) -> str:
    kind = draw(st.integers(0, 9))  # half of them name a live session: its sub or its id
    if kind <= 2:
        return draw(_spellings(draw(st.sampled_from([s.sub for s in app.live]))))
    if kind <= 4:
        return draw(_spellings(draw(st.sampled_from([s.admin_id for s in app.live]))))
    if kind == 5:  # an id that looks right: a real handle with another sub, or mangled
        live = draw(st.sampled_from(app.live))
        handle, _, enc = live.admin_id.partition(".")
        return draw(st.sampled_from([f"{handle}.{enc}=", f"{handle}.{enc}.x", f"{handle}.",
                                     f".{enc}", f"{handle}", f"{handle}.{enc[:-1]}",
                                     f"{handle}%2E{enc}", f"{handle}.{enc}%00",
                                     f"{handle.upper()}.{enc}"]))
    if kind <= 7:
        return draw(st.sampled_from(ODD))
    if kind == 8:
        return quote(draw(st.text(max_size=30)), safe=draw(st.sampled_from(["", "/", "/%"])))
    return "".join(f"%{b:02x}" for b in draw(st.binary(max_size=20)))


@st.composite
def queries(draw: st.DrawFn, app: App) -> bytes:
    values = st.one_of(segments(app), st.just(""))
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["sub", "sub", "SUB", "sub%3D", "s%75b", "key", "id"]))
        parts.append(draw(st.sampled_from([f"{name}={draw(values)}", name])))
    sep = draw(st.sampled_from(["&", ";", "&&"]))
    return sep.join(parts).encode("ascii")


PATHS = [("/admin/sessions",), ("/admin/sessions/", None), ("/admin/users/", None, "/sessions"),
         ("/admin/users/", None), ("/admin/users/", None, "/sessions/x"),
         ("/admin/openapi.json",), ("/metrics",), ("/healthz",), ("/admin",), ("/admin/",),
         ("/admin/sessions/", None, "/", None), ("/admin/users//sessions",)]
PREFIXES = ["", "/", "/admin/..", "/admin/.", "/./"]
RESPELL = [("", ""), ("/admin/", "/%61dmin/"), ("/admin/", "/ADMIN/"), ("/admin/", "//admin/"),
           ("/admin/", "/admin//"), ("sessions", "session%73"), ("/users/", "/./users/")]


@st.composite
def paths(draw: st.DrawFn, app: App) -> tuple[str, list[str]]:
    """(raw path, the segments drawn into it)."""
    shape = draw(st.sampled_from(PATHS[:3]) if draw(st.booleans()) else st.sampled_from(PATHS))
    filled = [draw(segments(app)) if part is None else part for part in shape]
    path = "".join(filled)
    if draw(st.integers(0, 4)) == 0:
        old, new = draw(st.sampled_from(RESPELL))
        path = draw(st.sampled_from(PREFIXES)) + path.replace(old, new, 1)
    return path, [p for p, s in zip(filled, shape, strict=True) if s is None]


GOOD = f"Bearer {TOKEN}".encode()
AUTHS = [[], [GOOD], [b"Bearer nope"], [GOOD.lower()], [b"bearer " + TOKEN.encode()],
         [GOOD + b" "], [b" " + GOOD], [b"Bearer  " + TOKEN.encode()], [GOOD + b"\x00"],
         [TOKEN.encode()], [b"Basic " + TOKEN.encode()], [GOOD[:-1]], [GOOD + b"x"],
         [b"Bearer"], [b""], [GOOD, b"Bearer nope"], [b"Bearer nope", GOOD], [GOOD, GOOD],
         [b"Bearer " + b"x" * 9000], [b"Bearer \xff\xfe"]]


@st.composite
def requests(draw: st.DrawFn, app: App) -> tuple[str, bytes, bytes, list[tuple[bytes, bytes]],
                                                 list[str]]:
    method = draw(st.sampled_from(["GET", "DELETE"]) if draw(st.integers(0, 3)) else
                  st.sampled_from(["HEAD", "POST", "PUT", "PATCH", "OPTIONS", "TRACE", "get",
                                   "delete", "FOO"]))
    path, segs = draw(paths(app))
    query = draw(queries(app)) if draw(st.booleans()) else b""
    headers = [(draw(st.sampled_from([b"authorization", b"authorization", b"x-authorization"])),
                v) for v in draw(st.sampled_from(AUTHS) if draw(st.booleans()) else
                                  st.just([GOOD]))]
    extra = draw(st.sampled_from([[], [(b"cookie", f"__Host-bffgate={app.live[0].cookie}"
                                        .encode())], [(b"x-forwarded-for", b"10.9.9.9")]]))
    return method, path.encode("ascii"), query, headers + extra, segs


def _names(segs: list[str], query: bytes) -> set[str]:
    """Every value the request could be naming a session or user by, decoded as the API
    decodes path segments (unquote) and query values (form decoding)."""
    out = {unquote(s) for s in segs} | {s for s in segs}
    out |= {v for _, v in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
    return out


@given(st.data())
def test_any_admin_request_is_answered_safely(app: App, data: st.DataObject) -> None:
    app.run(app.restore())
    method, raw, query, headers, segs = data.draw(requests(app))
    with capture_logs() as logs:
        answer = app.run(call(app.gw.admin, method, raw, query, headers))
    text = answer.body.decode("utf-8", "replace")
    where = f"{method} {raw[:200]!r}?{query[:200]!r} -> {answer.status} {text[:300]}"

    event(f"{method.upper() if method.upper() in ('GET', 'DELETE') else 'other'} {answer.status}")
    assert answer.status < 500, where
    assert "Traceback" not in text and 'File "' not in text, where
    ctype = answer.header(b"content-type") or b""
    if answer.status >= 400:
        assert ctype == b"application/problem+json", where
        problem = json.loads(answer.body)
        assert problem["status"] == answer.status, where
        # Bad input is audited: one request.rejected naming the status.
        rejected = [e for e in logs if e.get("event") == "request.rejected"]
        assert [e.get("status") for e in rejected] == [answer.status], (where, logs)
    else:
        assert ctype.split(b";")[0] in (b"application/json", b"text/plain"), where
        if ctype.startswith(b"application/json") and answer.body:
            json.loads(answer.body)

    path = unquote(raw.decode("ascii"))
    auth = [v for k, v in headers if k == b"authorization"]
    authorized = bool(auth) and auth[0] == GOOD
    if any(path == g or path.startswith(g + "/") for g in GUARDED) and not authorized:
        assert answer.status == 401, where
        assert (answer.header(b"www-authenticate") or b"").startswith(b"Bearer"), where

    blob = b"".join(k + b": " + v + b"\n" for k, v in answer.headers) + answer.body
    for secret in [TOKEN, COOKIE_KEY, CLIENT_SECRET] + [x for s in app.live for x in s.secrets]:
        assert secret.encode() not in blob, f"{where}: a secret in the answer"

    there = app.run(app.alive())
    ended = [s for s in app.live if s.key not in there]
    if answer.status >= 300 or method.upper() != "DELETE":
        assert not ended, f"{where}: ended {[s.sub for s in ended]}"
        return
    event(f"ended {len(ended)}")
    names = _names(segs, query)
    for s in ended:  # only what the request names, by sub or by admin id
        assert s.sub in names or s.admin_id in names, f"{where}: ended {s.sub!r}"
    assert json.loads(answer.body) == {"revoked": len(ended)}, where


@given(st.data())
def test_a_clean_revoke_ends_exactly_what_it_names(app: App, data: st.DataObject) -> None:
    """The positive side, so the property above is not vacuous: DELETE by encoded sub, by
    the older ?sub= spelling, or by id, with the bearer, ends exactly those sessions."""
    app.run(app.restore())
    target = data.draw(st.sampled_from(app.live))
    how = data.draw(st.sampled_from(["user", "query", "id"]))
    if how == "user":
        raw, query = f"/admin/users/{quote(target.sub, safe='')}/sessions", b""
        want = {s.key for s in app.live if s.sub == target.sub}
    elif how == "query":
        raw, query = "/admin/sessions", b"sub=" + quote(target.sub, safe="").encode()
        want = {s.key for s in app.live if s.sub == target.sub}
    else:
        raw, query = f"/admin/sessions/{quote(target.admin_id, safe='')}", b""
        want = {target.key}
    shown = app.run(call(app.gw.admin, "GET", b"/admin/sessions",
                         b"sub=" + quote(target.sub, safe="").encode(),
                         [(b"authorization", GOOD)]))
    assert shown.status == 200
    assert target.admin_id in {s["id"] for s in json.loads(shown.body)["sessions"]}
    answer = app.run(call(app.gw.admin, "DELETE", raw.encode(), query,
                          [(b"authorization", GOOD)]))
    assert answer.status == 200, answer.body
    assert json.loads(answer.body) == {"revoked": len(want)}
    there = app.run(app.alive())
    assert {s.key for s in app.live} - there == want
