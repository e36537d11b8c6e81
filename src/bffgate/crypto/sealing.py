"""Seal and open token blobs with AES-256-GCM under a key derived from the per-session secret.

Redis alone therefore reveals no token: the key lives only in the browser's cookie. The
store key is bound as associated data, so a sealed blob moved to another record fails.
"""

from __future__ import annotations

import base64
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_INFO = b"bffgate token sealing v1"
_NONCE = 12


class SealBroken(ValueError):
    """The blob was not sealed with this secret for this record, or was altered."""


def _key(secret: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret)


def seal(secret: bytes, plaintext: bytes, associated: bytes) -> str:
    nonce = os.urandom(_NONCE)
    ct = AESGCM(_key(secret)).encrypt(nonce, plaintext, associated)
    return base64.urlsafe_b64encode(nonce + ct).decode("ascii")


def open_sealed(secret: bytes, blob: str, associated: bytes) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(blob.encode("ascii"))
        return AESGCM(_key(secret)).decrypt(raw[:_NONCE], raw[_NONCE:], associated)
    except (InvalidTag, ValueError, UnicodeEncodeError) as exc:
        raise SealBroken("sealed data does not open") from exc
