"""Request framing rules (RFC 9112 §6): one unambiguous body length, or a refusal.

Both HTTP parsers uvicorn can use (h11, httptools) frame requests themselves; they disagree
on what they tolerate (h11 takes Content-Length with Transfer-Encoding and merges equal
duplicate Content-Lengths, httptools takes ``gzip, chunked``, both take chunked in HTTP/1.0).
``check_framing`` is the one policy applied to every request head, whatever the parser, and
``classify_rejected_head`` names what a parser refused, so both answer alike. Pure: bytes in,
typed error out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bffgate.errors import BadRequest, GatewayError, MethodNotAllowed

Fields = Sequence[tuple[bytes, bytes]]  # (lower-case name, value) as received, duplicates kept

_DIGITS = re.compile(rb"[0-9]{1,18}")  # fullmatch; 18 digits: far above any body limit
_LINE_END = re.compile(rb"\r?\n")


class FramingRejected(BadRequest):
    slug, title = "bad-framing", "The request's message framing is invalid or ambiguous"


class TransferCodingNotImplemented(GatewayError):
    status, slug = 501, "transfer-coding-not-implemented"
    title = "The request uses a transfer coding this gateway does not implement"


class UpgradeRefused(BadRequest):
    slug, title = "upgrade-refused", "Protocol upgrade is not supported here"


def check_framing(fields: Fields, *, method: bytes, http_version: bytes,
                  websocket_ok: bool = False) -> GatewayError | None:
    """The refusal for a request head whose body length is not beyond doubt, else None.

    ``websocket_ok``: the head is a well-formed WebSocket handshake (``is_websocket_handshake``)
    on a route with ``websocket = true``; its Upgrade is the only one let through.
    Order matters only for the reason named: every rule below ends in a refusal.
    """
    if method == b"CONNECT":
        # After CONNECT a parser treats the rest of the stream as tunnel bytes: refuse it
        # here so no request after it on the connection goes unanswered.
        return MethodNotAllowed("CONNECT is not supported", reason="framing:connect")
    if not websocket_ok and any(name == b"upgrade" for name, _ in fields):
        # A parser that honours Upgrade stops reading the body and what follows it: only a
        # bodiless WebSocket handshake on a websocket route may switch protocols.
        return UpgradeRefused(
            "the gateway does not switch protocols: send the request without an Upgrade "
            "header", reason="framing:upgrade")
    lengths = [value for name, value in fields if name == b"content-length"]
    codings_fields = [value for name, value in fields if name == b"transfer-encoding"]
    if codings_fields:
        if lengths:
            return FramingRejected(
                "a request may carry Content-Length or Transfer-Encoding, not both "
                "(RFC 9112 section 6.3)", reason="framing:cl_and_te")
        if http_version == b"1.0":
            return FramingRejected("Transfer-Encoding is not defined in HTTP/1.0 "
                                   "(RFC 9112 section 6.1)", reason="framing:te_http10")
        return _check_codings(codings_fields)
    if len(lengths) > 1 or any(b"," in v for v in lengths):
        return FramingRejected("Content-Length is given more than once",
                               reason="framing:duplicate_content_length")
    if lengths and _DIGITS.fullmatch(lengths[0].strip(b" \t")) is None:
        return FramingRejected("Content-Length must be a decimal number of bytes",
                               reason="framing:bad_content_length")
    return None


_WS_KEY = re.compile(rb"[A-Za-z0-9+/]{22}==")  # base64 of 16 bytes (RFC 6455 section 4.1)


def is_websocket_handshake(fields: Fields, *, method: bytes, http_version: bytes) -> bool:
    """True for an RFC 6455 opening handshake beyond doubt: GET over HTTP/1.1, one
    ``Upgrade: websocket``, ``Connection`` naming upgrade, version 13, one valid key, and no
    body (Content-Length absent or 0, no Transfer-Encoding)."""
    if method != b"GET" or http_version != b"1.1":
        return False

    def values(name: bytes) -> list[bytes]:
        return [v.strip(b" \t") for n, v in fields if n == name]

    connection = [t.strip(b" \t").lower() for v in values(b"connection") for t in v.split(b",")]
    lengths = values(b"content-length")
    upgrade = values(b"upgrade")
    return (len(upgrade) == 1 and upgrade[0].lower() == b"websocket"
            and b"upgrade" in connection
            and values(b"sec-websocket-version") == [b"13"]
            and len(values(b"sec-websocket-key")) == 1
            and _WS_KEY.fullmatch(values(b"sec-websocket-key")[0]) is not None
            and not values(b"transfer-encoding")
            and lengths in ([], [b"0"]))


def target_path(target: bytes) -> str:
    """The path of a request target (origin-form), query cut off."""
    return target.partition(b"?")[0].decode("latin-1")


def _check_codings(values: list[bytes]) -> GatewayError | None:
    codings = [c.strip(b" \t").lower() for v in values for c in v.split(b",")]
    codings = [c for c in codings if c]
    unknown = [c for c in codings if c != b"chunked"]
    if unknown:
        # RFC 9112 section 6.1: a coding the server does not understand gets 501. The
        # gateway decodes only chunked (no gzip, and "identity" is no coding any more).
        return TransferCodingNotImplemented(
            "only Transfer-Encoding: chunked is supported; got "
            + ", ".join(c.decode("latin-1")[:32] for c in unknown[:4]),
            reason="framing:unsupported_transfer_coding")
    if codings != [b"chunked"]:
        return FramingRejected("Transfer-Encoding must name chunked exactly once",
                               reason="framing:bad_transfer_encoding")
    return None


def head_fields(head: bytes) -> tuple[bytes, bytes, list[tuple[bytes, bytes]]]:
    """Method, HTTP version and raw fields of a request head (the bytes up to the blank
    line). Tolerant on purpose: it only names the cause of a refusal a parser already made,
    or sees duplicates a parser merged; it never decides that a head is acceptable."""
    lines = _LINE_END.split(head)
    request_line = lines[0].split(b" ") if lines else [b""]
    method = request_line[0]
    version = request_line[-1].rpartition(b"/")[2] if len(request_line) >= 3 else b""
    fields = []
    for line in lines[1:]:
        if not line:
            break
        name, sep, value = line.partition(b":")
        if sep:
            fields.append((name.strip(b" \t").lower(), value.strip(b" \t")))
    return method, version, fields


def classify_rejected_head(head: bytes) -> GatewayError:
    """The answer for a head a parser refused: the framing rule it broke when one can be
    named from the raw bytes, else a plain 400 for a malformed request."""
    method, version, fields = head_fields(head)
    return check_framing(fields, method=method, http_version=version) or malformed()


def malformed() -> FramingRejected:
    return FramingRejected("the request is not valid HTTP/1.1", reason="framing:malformed")


def bad_chunk() -> FramingRejected:
    return FramingRejected("the chunked request body is malformed", reason="framing:bad_chunk")
