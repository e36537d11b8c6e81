"""Exchanged tokens in the session record (session/model.py, record.py): sealed like the
session's tokens, optional (records written before them still read), bound to their record."""

from __future__ import annotations

import json

import pytest

from bffgate.crypto.cookie_codec import SessionHandle
from bffgate.session.model import ExchangedToken, SessionData, Tokens
from bffgate.session.record import RecordUnreadable, decode_session, encode_session

SECRET_AT = "exchanged-access-token-value-0123456789"


def _data(**exchanged: ExchangedToken) -> SessionData:
    return SessionData("alice", None, {}, 1000.0, 9000.0, "lo",
                       Tokens("at-0", "rt-0", None, 2000.0, 1900.0), exchanged=exchanged)


def test_exchanged_tokens_round_trip_sealed() -> None:
    handle = SessionHandle.new()
    entry = ExchangedToken(SECRET_AT, 1500.0, 1490.0, "digest")
    raw = encode_session(handle, _data(**{"/orders#ab": entry}))
    assert SECRET_AT.encode() not in raw and b"/orders" not in raw  # route keys sealed too
    back = decode_session(handle, raw).exchanged["/orders#ab"]
    assert (back.access_token, back.expires_at, back.renew_at, back.subject) == (
        SECRET_AT, 1500.0, 1490.0, "digest")


def test_a_record_without_exchanged_tokens_has_no_xt_and_reads_as_empty() -> None:
    handle = SessionHandle.new()
    raw = encode_session(handle, _data())
    assert "xt" not in json.loads(raw)
    assert decode_session(handle, raw).exchanged == {}


def test_an_xt_blob_from_another_record_does_not_open() -> None:
    a, b = SessionHandle.new(), SessionHandle.new()
    entry = ExchangedToken(SECRET_AT, None, 1490.0, "digest")
    doc_a = json.loads(encode_session(a, _data(**{"k": entry})))
    doc_b = json.loads(encode_session(b, _data()))
    doc_b["xt"] = doc_a["xt"]
    with pytest.raises(RecordUnreadable):
        decode_session(b, json.dumps(doc_b).encode())


def test_the_main_sealed_blob_does_not_open_as_xt() -> None:
    handle = SessionHandle.new()
    doc = json.loads(encode_session(handle, _data()))
    doc["xt"] = doc["sealed"]  # same secret, same record: the associated data differs
    with pytest.raises(RecordUnreadable):
        decode_session(handle, json.dumps(doc).encode())


def test_with_tokens_drops_exchanged_and_repr_shows_no_token() -> None:
    entry = ExchangedToken(SECRET_AT, None, 1490.0, "digest")
    data = _data(k=entry)
    assert data.with_tokens(data.tokens).exchanged == {}
    assert SECRET_AT not in repr(entry) and SECRET_AT not in repr(data)
