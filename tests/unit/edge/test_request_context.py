"""Unit tests for bffgate.edge.request_context: the request's facts from trusted proxies
(combined X-Forwarded-For lines, one X-Request-Id), a refusal kept for the boundary, and
the log context bound explicitly."""

from __future__ import annotations

import pytest

from bffgate.edge.client_address import TrustedProxies
from bffgate.edge.request_context import bind_log_context, read_request
from bffgate.errors import AmbiguousRequest
from bffgate.log_context import request_fields

PROXIES = TrustedProxies(["10.0.0.0/8", "fd00::/8"])
H = list[tuple[bytes, bytes]]


def _h(*pairs: tuple[str, str]) -> H:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


# --- read_request: combining XFF lines, duplicate X-Request-Id ----------------------------

def _scope(peer: str, *headers: tuple[str, str]) -> dict[str, object]:
    return {"type": "http", "method": "GET", "path": "/api/x", "client": (peer, 1234),
            "headers": _h(*headers)}


def test_read_request_combines_xff_lines_in_order() -> None:
    """Several X-Forwarded-For lines from a trusted proxy are one list, in order."""
    info = read_request(_scope("10.0.0.1", ("x-forwarded-for", "6.6.6.6"),
                               ("x-forwarded-for", "1.2.3.4, 10.9.9.9")), PROXIES)
    assert info.client_ip == "1.2.3.4"


def test_read_request_trusted_request_id_once() -> None:
    rid = "abcdef0123456789"
    info = read_request(_scope("10.0.0.1", ("x-request-id", rid)), PROXIES)
    assert info.request_id == rid
    untrusted = read_request(_scope("203.0.113.9", ("x-request-id", rid)), PROXIES)
    assert untrusted.request_id != rid
    # from an untrusted peer a duplicate is ignored along with the header itself
    read_request(_scope("203.0.113.9", ("x-request-id", rid), ("x-request-id", rid + "x")),
                 PROXIES)


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param([("x-request-id", "abcdef0123456789"), ("x-request-id", "0123456789abcdef")],
                     "duplicate_header:x-request-id", id="request-id-twice"),
        pytest.param([("x-forwarded-for", "unknown")], "invalid_header:x-forwarded-for",
                     id="xff-unknown"),
    ],
)
def test_read_request_refuses_ambiguous_trusted_headers(headers: list[tuple[str, str]],
                                                        reason: str) -> None:
    """The refusal is kept, not raised: the context still has the peer's address and a
    fresh id, so the edge can log and answer it under that request id."""
    info = read_request(_scope("10.0.0.1", *headers), PROXIES)
    assert info.refusal is not None and isinstance(info.refusal, AmbiguousRequest)
    assert info.refusal.reason == reason
    assert info.client_ip == "10.0.0.1" and len(info.request_id) == 24
    bind_log_context(info)
    bound = request_fields()
    assert bound["client_ip"] == "10.0.0.1"
    assert bound["request_id"] == info.request_id


def test_log_fields_are_bounded() -> None:
    """A method of any length (the fuzz tier sends thousands of characters) is logged as its
    first 32, like the path (512) and the User-Agent (256): no log line grows with it."""
    scope = _scope("10.0.0.1", ("user-agent", "u" * 1000)) | {"method": "X" * 5000,
                                                             "path": "/" + "p" * 5000}
    info = read_request(scope, PROXIES)
    assert (len(info.method), len(info.path), len(info.user_agent)) == (32, 512, 256)
