"""Unit tests for token sealing (AES-256-GCM under a key derived from the session secret)."""

from __future__ import annotations

import base64
import secrets

import pytest

from bffgate.crypto.sealing import SealBroken, open_sealed, seal

SECRET = b"s" * 32
RECORD = b"s:4f2a"  # associated data: the store key of the record
PLAINTEXT = b'{"at":"access","rt":"refresh","it":"id"}'


def test_round_trip() -> None:
    """open_sealed(seal(x)) == x with the same secret and associated data."""
    assert open_sealed(SECRET, seal(SECRET, PLAINTEXT, RECORD), RECORD) == PLAINTEXT


def test_empty_plaintext_round_trips() -> None:
    """Even an empty payload is sealed and authenticated."""
    assert open_sealed(SECRET, seal(SECRET, b"", RECORD), RECORD) == b""


def test_blob_is_ascii_and_hides_the_plaintext() -> None:
    """The blob is base64 text and contains nothing of the plaintext."""
    blob = seal(SECRET, PLAINTEXT, RECORD)
    assert blob.isascii()
    assert b"refresh" not in base64.urlsafe_b64decode(blob)
    assert "refresh" not in blob


def test_each_seal_uses_a_fresh_nonce() -> None:
    """Sealing the same data twice gives different blobs (random 96-bit nonce)."""
    blobs = {seal(SECRET, PLAINTEXT, RECORD) for _ in range(100)}
    assert len(blobs) == 100


def test_wrong_secret_does_not_open() -> None:
    """Another session's secret (Redis alone, no cookie) cannot open the blob."""
    blob = seal(SECRET, PLAINTEXT, RECORD)
    with pytest.raises(SealBroken):
        open_sealed(secrets.token_bytes(32), blob, RECORD)


def test_wrong_associated_data_does_not_open() -> None:
    """A blob moved to another record's key fails."""
    blob = seal(SECRET, PLAINTEXT, RECORD)
    with pytest.raises(SealBroken):
        open_sealed(SECRET, blob, b"s:other")


@pytest.mark.parametrize(
    "where",
    [
        pytest.param(0, id="nonce-first-byte"),
        pytest.param(11, id="nonce-last-byte"),
        pytest.param(12, id="ciphertext-first-byte"),
        pytest.param(-17, id="ciphertext-last-byte"),
        pytest.param(-1, id="tag-last-byte"),
    ],
)
def test_tampered_blob_does_not_open(where: int) -> None:
    """Flipping one bit anywhere in nonce, ciphertext or tag is detected."""
    raw = bytearray(base64.urlsafe_b64decode(seal(SECRET, PLAINTEXT, RECORD)))
    raw[where] ^= 0x01
    with pytest.raises(SealBroken):
        open_sealed(SECRET, base64.urlsafe_b64encode(bytes(raw)).decode(), RECORD)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda raw: raw[:-1], id="truncated-tag"),
        pytest.param(lambda raw: raw + b"\x00", id="extended"),
        pytest.param(lambda raw: raw[:12], id="nonce-only"),
    ],
)
def test_resized_blob_does_not_open(edit: object) -> None:
    """Truncating or extending the sealed bytes is detected."""
    assert callable(edit)
    raw = base64.urlsafe_b64decode(seal(SECRET, PLAINTEXT, RECORD))
    with pytest.raises(SealBroken):
        open_sealed(SECRET, base64.urlsafe_b64encode(edit(raw)).decode(), RECORD)


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param("", id="empty"),
        pytest.param("not base64 !!", id="not-base64"),
        pytest.param("QUJD", id="three-bytes"),
        pytest.param("A", id="bad-padding"),
        pytest.param("é", id="non-ascii"),
        pytest.param(base64.urlsafe_b64encode(b"\x00" * 64).decode(), id="zeros"),
    ],
)
def test_garbage_raises_seal_broken(blob: str) -> None:
    """Anything that did not come from seal() raises SealBroken, never another error."""
    with pytest.raises(SealBroken):
        open_sealed(SECRET, blob, RECORD)
