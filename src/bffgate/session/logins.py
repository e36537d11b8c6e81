"""Login records: the server side of each login in flight, keyed by ``state``, single use.

The code_verifier and nonce are sealed under the browser's login-binding value, so a store
dump yields neither, and a callback from another browser cannot open them.
"""

from __future__ import annotations

import json

from bffgate import compact_json, telemetry
from bffgate.clock import Clock
from bffgate.crypto.cookie_codec import binding_matches
from bffgate.crypto.sealing import SealBroken, open_sealed, seal
from bffgate.session.model import LoginRecord
from bffgate.store.base import LoginRecordStore


class LoginRecordRejected(Exception):
    """The callback's state does not lead to a usable login record (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class LoginRecords:
    def __init__(self, store: LoginRecordStore, clock: Clock, *, login_timeout: int) -> None:
        self._store, self._clock, self.login_timeout = store, clock, login_timeout

    async def save(self, state: str, record: LoginRecord, binding: str) -> None:
        secret = compact_json.dumps({"v": record.code_verifier, "n": record.nonce})
        doc = {
            "sealed": seal(binding.encode(), secret, state.encode()),
            "return_url": record.return_url,
            "created_at": record.created_at,
            "binding": record.binding_hash,
        }
        if (trace := telemetry.current_traceparent()) is not None:
            doc["trace"] = trace  # tracing on: the callback's span links to the login's
        await self._store.put_login(state, compact_json.dumps(doc), self.login_timeout)

    async def take(self, state: str, binding: str | None) -> LoginRecord:
        """Single use: the record is deleted whether or not the checks pass."""
        raw = await self._store.take_login(state)
        if raw is None:
            raise LoginRecordRejected("state_unknown")
        doc = json.loads(raw)
        telemetry.link_current_span(doc.get("trace"), "login")
        if self._clock.now() - float(doc["created_at"]) > self.login_timeout:
            raise LoginRecordRejected("login_expired")
        if not binding_matches(binding, doc["binding"]):
            raise LoginRecordRejected("binding_mismatch")
        try:
            secret = json.loads(open_sealed((binding or "").encode(), doc["sealed"],
                                            state.encode()))
        except SealBroken:
            raise LoginRecordRejected("binding_mismatch") from None
        return LoginRecord(secret["v"], secret["n"], doc["return_url"],
                           float(doc["created_at"]), doc["binding"])
