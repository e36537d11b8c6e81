"""Property tests: the request framing policy (bffgate.framing), for any request head."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bffgate.errors import GatewayError
from bffgate.framing import check_framing, classify_rejected_head, head_fields

pytestmark = pytest.mark.fuzz

NAMES = [b"content-length", b"transfer-encoding", b"upgrade", b"host", b"x-a", b"connection"]
VALUES = [b"0", b"5", b"05", b" 5 ", b"5,5", b"5, 6", b"-1", b"+5", b"0x5", b"1" * 19, b"",
          b"chunked", b"Chunked", b"chunked, chunked", b"gzip, chunked", b"chunked, identity",
          b"identity", b" chunked", b"chunked,", b",chunked", b"websocket", b"h2c", b"\x00"]
fields = st.lists(st.tuples(st.sampled_from(NAMES),
                            st.one_of(st.sampled_from(VALUES), st.binary(max_size=12))),
                  max_size=5)
methods = st.sampled_from([b"GET", b"POST", b"CONNECT", b"PUT", b"connect", b""])
versions = st.sampled_from([b"1.1", b"1.0", b"", b"2"])
_DIGITS = re.compile(rb"[0-9]+")


@given(fields, methods, versions)
def test_a_head_passes_only_with_one_unambiguous_body_length(
        head: list[tuple[bytes, bytes]], method: bytes, version: bytes) -> None:
    refusal = check_framing(head, method=method, http_version=version)
    if refusal is not None:
        assert isinstance(refusal, GatewayError) and refusal.status in (400, 405, 501)
        return
    assert method != b"CONNECT"
    assert not any(n == b"upgrade" for n, _ in head)
    lengths = [v for n, v in head if n == b"content-length"]
    codings = [v for n, v in head if n == b"transfer-encoding"]
    assert not (lengths and codings)
    if codings:
        assert version != b"1.0"
        assert [c.strip(b" \t").lower() for v in codings for c in v.split(b",")
                if c.strip(b" \t")] == [b"chunked"]
    else:
        assert len(lengths) <= 1
        assert all(_DIGITS.fullmatch(v.strip(b" \t")) for v in lengths)


@given(st.one_of(st.binary(max_size=300),
                 st.lists(st.sampled_from([b"GET / HTTP/1.1", b"POST /x HTTP/1.0", b"\r\n",
                                           b"Content-Length: 5", b"Transfer-Encoding: chunked",
                                           b"Upgrade: h2c", b"X:", b":", b" folded", b"\n"]),
                          max_size=8).map(b"\r\n".join)))
def test_a_refused_head_is_always_named_and_never_raises(head: bytes) -> None:
    _method, _version, parsed = head_fields(head)
    assert all(n == n.strip(b" \t").lower() for n, _ in parsed)
    refusal = classify_rejected_head(head)
    assert isinstance(refusal, GatewayError) and 400 <= refusal.status < 600
    assert refusal.reason.startswith("framing:")
