"""The store's login and session commands sent straight on redis-py connections (standalone
and Sentinel), past the client's per-command machinery.

Why: through ``Redis.execute_command`` one command costs ~275K instructions of the gateway's
CPU (callgrind); sent on one of redis-py's own connections, ~150K. The difference is the
pool's lock and its connection check, the observability hooks and the retry wrapper, run
for every command. A login sends three (login record SET and GETDEL, the new session's
script): ~7 % of its CPU. Nothing of the protocol is written here: the connections are
redis-py's (``ConnectionPool.make_connection()``: the client's host, auth, TLS, timeouts,
health checks, Sentinel's master discovery), and so are the command encoding and the
reply parsing.

What keeps it safe:

- A connection is reused only after a complete exchange: every reply read, error replies
  included. Any other end (a timeout, a broken socket, a cancellation while sending or
  waiting) leaves it disconnected (redis-py's reply reading drops it too), so a late reply
  can never be read as the answer to the next command (the class of CVE-2023-28858).
- At most ``keep`` idle connections are kept (the store: ``DIRECT_IDLE``); the store's
  concurrency bound (``RedisStore(max_concurrency=...)``, ``redis.max_connections``)
  bounds how many commands are in flight, on these and the client's pool together.
- Commands given together go out together on one connection; a script's follow-up (a
  ``WAIT``, which counts the writes of its own connection) goes on the script's connection
  once the script has run.
- Scripts go as ``EVALSHA`` and are loaded on ``NOSCRIPT`` (a restarted or failed-over
  Redis), then sent again, as redis-py's ``Script`` does.

A Cluster routes each key to its node: the store keeps the cluster client's own path.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from redis.exceptions import ConnectionError, NoScriptError, ResponseError

Command = Sequence[Any]
DIRECT_IDLE = 32  # idle connections the store keeps open for these commands


class DirectCommands:
    def __init__(self, pool: Any, keep: int) -> None:
        self._pool, self._keep = pool, keep
        self._idle: list[Any] = []
        self._closed = False

    async def run(self, *commands: Command) -> list[Any]:
        """Each command's reply, in order (sent together); an error reply raises (the
        first one's), once every reply is read."""
        return await self._on_one(lambda conn: _exchange(conn, commands))

    async def script(self, script: Any, keys: Sequence[Any], args: Sequence[Any],
                     *, then: Command | None = None,
                     then_timeout: float | None = None) -> list[Any]:
        """``script`` (redis-py's ``AsyncScript``: its SHA and source) by EVALSHA, loaded
        first if Redis does not know it; then ``then`` on the same connection, once the
        script has run (``then_timeout``: how long its reply may take, e.g. a WAIT's). The
        replies of both."""
        evalsha = ("EVALSHA", script.sha, len(keys), *keys, *args)

        async def steps(conn: Any) -> list[Any]:
            try:
                replies = await _exchange(conn, [evalsha])
            except NoScriptError:  # a restarted or promoted Redis: no script cache
                replies = (await _exchange(conn, [("SCRIPT", "LOAD", script.script),
                                                  evalsha]))[1:]
            if then is not None:
                replies += await _exchange(conn, [then], then_timeout)
            return replies

        return await self._on_one(steps)

    async def _on_one(self, steps: Callable[[Any], Awaitable[list[Any]]]) -> list[Any]:
        """``steps`` on one connection, taken back only if they left it in step."""
        conn = await self._lend()
        in_step = False
        try:
            replies = await steps(conn)
            in_step = True
            return replies
        except BaseException as exc:
            in_step = await self._failed(exc)
            raise
        finally:
            await self._take_back(conn, in_step)

    async def _lend(self) -> Any:
        conn = self._idle.pop() if self._idle else self._pool.make_connection()
        try:
            # As the pool does before lending one: (re)connect where the connection's kind
            # says, e.g. Sentinel's to the current master (sending alone would connect to
            # the connection's own default address).
            await conn.connect()
        except BaseException as exc:
            await self._failed(exc)
            await conn.disconnect(nowait=True)
            raise
        return conn

    async def _failed(self, exc: BaseException) -> bool:
        """Whether the connection is still in step after ``exc``."""
        if isinstance(exc, ResponseError):  # error replies are read whole
            return True
        if isinstance(exc, ConnectionError):
            # The server went away or changed role (a restart; a Sentinel failover: redis-py
            # turns the demoted master's READONLY into this): the idle connections lead to
            # it too. Dropped, as the Sentinel pool drops its own on a new master, so the
            # store's one retry (once_more_if_dead) connects anew, to the current master.
            await self._drop_idle()
        return False

    async def _take_back(self, conn: Any, in_step: bool) -> None:
        if in_step and len(self._idle) < self._keep and not self._closed:
            self._idle.append(conn)
        else:
            await conn.disconnect(nowait=True)

    async def _drop_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.disconnect(nowait=True)

    async def close(self) -> None:
        self._closed = True
        await self._drop_idle()


async def _exchange(conn: Any, commands: Sequence[Command],
                    timeout: float | None = None) -> list[Any]:
    await conn.send_packed_command(conn.pack_commands(commands))
    replies, error = [], None
    for _ in commands:
        try:
            reply = await conn.read_response(timeout=timeout)
        except ResponseError as exc:  # read whole: the connection stays in step
            error = error or exc
            reply = exc
        # With a timeout, redis-py answers None for "no reply in time" (``then`` commands
        # given one have a non-nil reply: WAIT's is an integer).
        if reply is None and timeout is not None:
            raise TimeoutError("no reply within its timeout")
        replies.append(reply)
    if error is not None:
        raise error
    return replies
