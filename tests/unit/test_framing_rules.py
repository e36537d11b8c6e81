"""Unit tests for the request framing rules (bffgate.framing). Properties over any input are
in tests/fuzz/test_props_framing.py; the same rules end to end under both HTTP parsers are in
tests/e2e/test_framing.py."""

from __future__ import annotations

import pytest

from bffgate.errors import GatewayError, MethodNotAllowed
from bffgate.framing import (
    FramingRejected,
    TransferCodingNotImplemented,
    UpgradeRefused,
    check_framing,
    classify_rejected_head,
    head_fields,
)


def _check(*fields: tuple[bytes, bytes], method: bytes = b"POST",
           version: bytes = b"1.1") -> GatewayError | None:
    return check_framing(list(fields), method=method, http_version=version)


@pytest.mark.parametrize("fields", [
    pytest.param([], id="no-body"),
    pytest.param([(b"content-length", b"0")], id="cl-zero"),
    pytest.param([(b"content-length", b"12")], id="cl"),
    pytest.param([(b"transfer-encoding", b"chunked")], id="chunked"),
    pytest.param([(b"transfer-encoding", b"Chunked")], id="chunked-case"),
    pytest.param([(b"transfer-encoding", b" chunked ,")], id="chunked-empty-list-element"),
])
def test_unambiguous_framing_accepted(fields) -> None:
    assert _check(*fields) is None


@pytest.mark.parametrize(("fields", "version", "kind", "reason"), [
    ([(b"content-length", b"5"), (b"transfer-encoding", b"chunked")], b"1.1", FramingRejected,
     "framing:cl_and_te"),
    ([(b"transfer-encoding", b"identity"), (b"content-length", b"5")], b"1.1", FramingRejected,
     "framing:cl_and_te"),
    ([(b"content-length", b"5"), (b"content-length", b"5")], b"1.1", FramingRejected,
     "framing:duplicate_content_length"),
    ([(b"content-length", b"5, 5")], b"1.1", FramingRejected, "framing:duplicate_content_length"),
    ([(b"content-length", b"-1")], b"1.1", FramingRejected, "framing:bad_content_length"),
    ([(b"content-length", b"0x10")], b"1.1", FramingRejected, "framing:bad_content_length"),
    ([(b"content-length", b"1" * 19)], b"1.1", FramingRejected, "framing:bad_content_length"),
    ([(b"content-length", b"")], b"1.1", FramingRejected, "framing:bad_content_length"),
    ([(b"transfer-encoding", b"chunked, identity")], b"1.1", TransferCodingNotImplemented,
     "framing:unsupported_transfer_coding"),
    ([(b"transfer-encoding", b"gzip, chunked")], b"1.1", TransferCodingNotImplemented,
     "framing:unsupported_transfer_coding"),
    ([(b"transfer-encoding", b"chunked;ext=1")], b"1.1", TransferCodingNotImplemented,
     "framing:unsupported_transfer_coding"),
    ([(b"transfer-encoding", b"chunked"), (b"transfer-encoding", b"chunked")], b"1.1",
     FramingRejected, "framing:bad_transfer_encoding"),
    ([(b"transfer-encoding", b"")], b"1.1", FramingRejected, "framing:bad_transfer_encoding"),
    ([(b"transfer-encoding", b"chunked")], b"1.0", FramingRejected, "framing:te_http10"),
    ([(b"upgrade", b"foo"), (b"content-length", b"5")], b"1.1", UpgradeRefused,
     "framing:upgrade"),
    ([(b"upgrade", b"websocket")], b"1.1", UpgradeRefused, "framing:upgrade"),
])
def test_ambiguous_framing_refused(fields, version, kind, reason) -> None:
    error = _check(*fields, version=version)
    assert type(error) is kind
    assert error.reason == reason
    assert error.status == (501 if kind is TransferCodingNotImplemented else 400)


def test_connect_refused() -> None:
    error = _check(method=b"CONNECT")
    assert isinstance(error, MethodNotAllowed) and error.reason == "framing:connect"


def test_head_fields_keeps_duplicates_and_version() -> None:
    head = (b"POST /x HTTP/1.0\r\nHost: a\r\nContent-Length: 5\r\ncontent-length:  5 \r\n\r\n"
            b"Content-Length: 9")
    method, version, fields = head_fields(head)
    assert (method, version) == (b"POST", b"1.0")
    assert fields == [(b"host", b"a"), (b"content-length", b"5"), (b"content-length", b"5")]


@pytest.mark.parametrize(("head", "reason", "status"), [
    (b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
     "framing:duplicate_content_length", 400),
    (b"POST / HTTP/1.1\nTransfer-Encoding: identity\n\n", "framing:unsupported_transfer_coding",
     501),
    (b"\x00\x01garbage", "framing:malformed", 400),
    (b"", "framing:malformed", 400),
])
def test_classify_rejected_head(head, reason, status) -> None:
    error = classify_rejected_head(head)
    assert (error.reason, error.status) == (reason, status)


def test_http_parser_choice() -> None:
    """server.http_parser picks the protocol class; both carry the framing policy."""
    from bffgate.config import ConfigError
    from bffgate.http_parsers import protocol_class
    from bffgate.http_protocol import FramingH11Protocol
    from bffgate.http_protocol_httptools import FramingHttpToolsProtocol

    assert protocol_class("h11") is FramingH11Protocol
    assert protocol_class("httptools") is FramingHttpToolsProtocol
    assert protocol_class("auto") is FramingHttpToolsProtocol  # installed here (speed extra)
    with pytest.raises(ConfigError, match=r"server\.http_parser"):
        protocol_class("zttp")
