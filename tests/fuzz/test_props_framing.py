"""Property tests: the request framing rules (bffgate.framing), for any head a client can send."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bffgate.errors import GatewayError
from bffgate.framing import check_framing, classify_rejected_head

pytestmark = pytest.mark.fuzz


def _check(*fields: tuple[bytes, bytes], version: bytes) -> GatewayError | None:
    return check_framing(list(fields), method=b"POST", http_version=version)


@given(st.binary(max_size=512))
def test_classify_never_raises_and_always_refuses(head: bytes) -> None:
    """A parser already refused the head: whatever the bytes, the answer is a 4xx/501."""
    error = classify_rejected_head(head)
    assert error.status in (400, 405, 501)
    assert error.reason.startswith("framing:")


@given(st.lists(st.tuples(st.sampled_from([b"content-length", b"transfer-encoding", b"upgrade",
                                           b"host"]),
                          st.binary(max_size=16)), max_size=4),
       st.sampled_from([b"1.0", b"1.1"]))
def test_at_most_one_framing_is_ever_accepted(fields, version) -> None:
    """Invariant: an accepted head frames its body one way only (a single 1*DIGIT
    Content-Length, or exactly ``chunked`` on HTTP/1.1, or no body), and never upgrades."""
    if _check(*fields, version=version) is not None:
        return
    names = [n for n, _ in fields]
    assert b"upgrade" not in names
    lengths = [v for n, v in fields if n == b"content-length"]
    codings = [v for n, v in fields if n == b"transfer-encoding"]
    assert not (lengths and codings)
    assert len(lengths) <= 1
    if lengths:
        assert lengths[0].strip(b" \t").isdigit()
    if codings:
        assert version == b"1.1"
        assert [c.strip(b" \t").lower() for v in codings for c in v.split(b",")
                if c.strip(b" \t")] == [b"chunked"]
