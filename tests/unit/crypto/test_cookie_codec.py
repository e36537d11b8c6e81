"""Unit tests for the session cookie codec and the login-binding helpers."""

from __future__ import annotations

import hashlib
import string

import pytest
from itsdangerous import Signer

from bffgate.crypto import cookie_codec
from bffgate.crypto.cookie_codec import (
    SALT,
    CookieCodec,
    CookieInvalid,
    SessionHandle,
    binding_hash,
    binding_matches,
    new_login_binding,
)

OLD_KEY = "old-key-" + "o" * 32
NEW_KEY = "new-key-" + "n" * 32
OTHER_KEY = "other-key-" + "x" * 32
# Characters a tamperer might substitute: base64url, the other base64 alphabet, separators.
SUBSTITUTES = string.ascii_letters + string.digits + "-_+/=. "


@pytest.fixture
def handle() -> SessionHandle:
    return SessionHandle.new()


def test_round_trip_returns_the_same_handle(handle: SessionHandle) -> None:
    """decode(encode(h)) == h: id and secret survive the cookie."""
    codec = CookieCodec([NEW_KEY])
    assert codec.decode(codec.encode(handle)) == handle


def test_cookie_value_shape(handle: SessionHandle) -> None:
    """The value is 'v1.' + id (43) + '.' + secret (43) + '.' + signature (43), cookie-safe."""
    value = CookieCodec([NEW_KEY]).encode(handle)
    version, sid, secret, sig = value.split(".")
    assert version == "v1"
    assert [len(sid), len(secret), len(sig)] == [43, 43, 43]
    assert set(value) <= set(string.ascii_letters + string.digits + "-_.")


def test_new_handles_are_random() -> None:
    """Every new handle has a fresh 256-bit id and secret."""
    handles = [SessionHandle.new() for _ in range(200)]
    assert len({h.session_id for h in handles}) == 200
    assert len({h.secret for h in handles}) == 200
    assert all(len(h.session_id) == 32 and len(h.secret) == 32 for h in handles)


def test_tampering_with_any_character_is_refused(handle: SessionHandle) -> None:
    """Changing any single character of the value, to anything, makes it invalid.

    Includes the spare bits of the last base64 character and '+'/'/' for '-'/'_', which a
    lenient base64 decoder would otherwise map back to the same bytes.
    """
    codec = CookieCodec([NEW_KEY])
    value = codec.encode(handle)
    accepted = []
    for i, original in enumerate(value):
        for substitute in SUBSTITUTES:
            if substitute == original:
                continue
            tampered = value[:i] + substitute + value[i + 1 :]
            try:
                codec.decode(tampered)
            except CookieInvalid:
                continue
            accepted.append((i, original, substitute))
    assert accepted == []


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda v: v[:-1], id="truncated"),
        pytest.param(lambda v: v + "A", id="extended"),
        pytest.param(lambda v: v + "=", id="padding-appended"),
        pytest.param(lambda v: " " + v, id="leading-space"),
        pytest.param(lambda v: v.replace(".", "..", 2), id="doubled-separator"),
        pytest.param(lambda v: v.rsplit(".", 1)[0], id="signature-removed"),
        pytest.param(lambda v: v.rsplit(".", 1)[0] + ".", id="signature-empty"),
        pytest.param(lambda v: ".".join(v.split(".")[i] for i in (0, 2, 1, 3)),
                     id="id-and-secret-swapped"),
        pytest.param(lambda v: v + "é", id="non-ascii"),
        pytest.param(lambda v: v + "A" * 600, id="oversized"),
    ],
)
def test_structural_edits_are_refused(edit: object, handle: SessionHandle) -> None:
    """Truncation, extension, reordering and junk all fail."""
    assert callable(edit)
    codec = CookieCodec([NEW_KEY])
    with pytest.raises(CookieInvalid):
        codec.decode(edit(codec.encode(handle)))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("v1", id="version-only"),
        pytest.param("v1.", id="version-dot"),
        pytest.param("garbage", id="garbage"),
        pytest.param("v1.a.b.c", id="short-parts"),
    ],
)
def test_garbage_is_refused(value: str) -> None:
    """Values that never came from the codec are CookieInvalid (never another exception)."""
    with pytest.raises(CookieInvalid):
        CookieCodec([NEW_KEY]).decode(value)


@pytest.mark.parametrize(
    "version",
    [
        pytest.param("v0", id="v0"),
        pytest.param("v2", id="v2"),
        pytest.param("V1", id="upper-V1"),
        pytest.param("", id="no-version"),
    ],
)
def test_wrong_version_prefix_is_refused(version: str, handle: SessionHandle) -> None:
    """Only 'v1.' is understood; another prefix over a valid body is refused."""
    codec = CookieCodec([NEW_KEY])
    body = codec.encode(handle).removeprefix("v1.")
    with pytest.raises(CookieInvalid, match="version"):
        codec.decode(f"{version}.{body}")


def test_old_key_still_verifies_after_rotation(handle: SessionHandle) -> None:
    """A cookie signed before rotation verifies with keys=[old, new]."""
    before = CookieCodec([OLD_KEY]).encode(handle)
    assert CookieCodec([OLD_KEY, NEW_KEY]).decode(before) == handle


def test_newest_key_signs(handle: SessionHandle) -> None:
    """After rotation, new cookies verify with the new key alone, not with the old one."""
    value = CookieCodec([OLD_KEY, NEW_KEY]).encode(handle)
    assert CookieCodec([NEW_KEY]).decode(value) == handle
    with pytest.raises(CookieInvalid, match="signature"):
        CookieCodec([OLD_KEY]).decode(value)


def test_removed_key_no_longer_verifies(handle: SessionHandle) -> None:
    """Once a key is dropped from the list, cookies signed only with it fail."""
    value = CookieCodec([OLD_KEY]).encode(handle)
    with pytest.raises(CookieInvalid, match="signature"):
        CookieCodec([NEW_KEY]).decode(value)


def test_unrelated_key_does_not_verify(handle: SessionHandle) -> None:
    """Another deployment's key never verifies our cookies."""
    value = CookieCodec([NEW_KEY]).encode(handle)
    with pytest.raises(CookieInvalid, match="signature"):
        CookieCodec([OTHER_KEY]).decode(value)


@pytest.mark.parametrize(
    "salt",
    [
        pytest.param("itsdangerous.Signer", id="itsdangerous-default-salt"),
        pytest.param("bffgate.login-state.v1", id="other-purpose"),
        pytest.param(SALT.replace("v1", "v2"), id="next-version-salt"),
    ],
)
def test_signature_for_another_purpose_does_not_verify(salt: str, handle: SessionHandle) -> None:
    """A value signed with the same key but another salt is refused (purpose separation)."""
    codec = CookieCodec([NEW_KEY])
    payload = codec.encode(handle).removeprefix("v1.").rsplit(".", 1)[0]
    foreign = Signer(NEW_KEY, salt=salt, digest_method=hashlib.sha256).sign(payload).decode()
    with pytest.raises(CookieInvalid, match="signature"):
        codec.decode("v1." + foreign)


def test_same_salt_and_key_is_what_verifies(handle: SessionHandle) -> None:
    """Control for the salt test: signing the payload with our salt reproduces a valid cookie."""
    codec = CookieCodec([NEW_KEY])
    payload = codec.encode(handle).removeprefix("v1.").rsplit(".", 1)[0]
    ours = Signer(NEW_KEY, salt=SALT, digest_method=hashlib.sha256).sign(payload).decode()
    assert codec.decode("v1." + ours) == handle


def test_codec_needs_a_key() -> None:
    """An empty key list is a configuration error, not a codec that signs with nothing."""
    with pytest.raises(ValueError, match="secret key"):
        CookieCodec([])


def test_handle_repr_never_shows_id_or_secret(handle: SessionHandle) -> None:
    """repr/str show only a short hash label; neither raw bytes nor their encodings leak."""
    text = repr(handle) + str(handle)
    value = CookieCodec([NEW_KEY]).encode(handle)
    _, sid, secret, _ = value.split(".")
    for leak in (sid, secret, handle.session_id.hex(), handle.secret.hex(),
                 repr(handle.session_id), repr(handle.secret)):
        assert leak not in text
    assert handle.short in text


def test_handle_key_is_sha256_of_the_id(handle: SessionHandle) -> None:
    """The store key is the hex SHA-256 of the id; the short label is its prefix."""
    assert handle.key == hashlib.sha256(handle.session_id).hexdigest()
    assert handle.short == handle.key[:16]
    assert handle.secret.hex() not in handle.key


def test_binding_hash_matches_its_own_value() -> None:
    """The binding cookie value matches the hash the login record keeps."""
    value = new_login_binding()
    assert binding_matches(value, binding_hash(value))


@pytest.mark.parametrize(
    "presented",
    [
        pytest.param(None, id="no-cookie"),
        pytest.param("", id="empty"),
        pytest.param("another-browser-value", id="other-value"),
        pytest.param("x" * 129, id="oversized"),
    ],
)
def test_binding_mismatch(presented: str | None) -> None:
    """A missing, different or oversized binding value never matches."""
    assert not binding_matches(presented, binding_hash(new_login_binding()))


def test_binding_hash_is_domain_separated() -> None:
    """The hash is not a bare SHA-256 of the value (a purpose prefix is mixed in)."""
    value = new_login_binding()
    assert binding_hash(value) != hashlib.sha256(value.encode()).hexdigest()
    assert len(binding_hash(value)) == 64


def test_login_bindings_are_random_and_long() -> None:
    """Binding values carry >= 256 bits and never repeat."""
    values = {new_login_binding() for _ in range(500)}
    assert len(values) == 500
    assert all(len(v) >= 43 for v in values)


# --- verify-only keys (cookie.verify_keys) and the three-step rotation ---------------------


def test_a_verify_only_key_verifies_but_never_signs(handle: SessionHandle) -> None:
    codec = CookieCodec([OLD_KEY], verify_keys=[NEW_KEY])
    minted_elsewhere = CookieCodec([OLD_KEY, NEW_KEY]).encode(handle)  # a replica a step ahead
    assert codec.decode(minted_elsewhere) == handle
    own = codec.encode(handle)
    assert CookieCodec([OLD_KEY]).decode(own) == handle  # signed with the old key
    with pytest.raises(CookieInvalid):
        CookieCodec([NEW_KEY]).decode(own)


def test_verify_keys_never_sign_whatever_their_order(handle: SessionHandle) -> None:
    value = CookieCodec([OLD_KEY], verify_keys=[NEW_KEY, OTHER_KEY]).encode(handle)
    assert CookieCodec([OLD_KEY]).decode(value) == handle


STEPS = [  # (secret_keys, verify_keys) of each rotation step, README "Operations"
    ([OLD_KEY], []),
    ([OLD_KEY], [NEW_KEY]),
    ([OLD_KEY, NEW_KEY], []),
    ([NEW_KEY], []),
]


@pytest.mark.parametrize("step", [0, 1, 2])
def test_replicas_one_step_apart_accept_each_others_cookies(step: int,
                                                            handle: SessionHandle) -> None:
    behind, ahead = CookieCodec(*STEPS[step]), CookieCodec(*STEPS[step + 1])
    for minting in (behind, ahead):
        value = minting.encode(handle)
        assert behind.decode(value) == handle
        assert ahead.decode(value) == handle


def test_promoting_without_the_verify_step_logs_users_out(handle: SessionHandle) -> None:
    """Why the verify-only step exists: a replica that promotes the new key at once mints
    cookies that a replica still on the old key set refuses."""
    with pytest.raises(CookieInvalid):
        CookieCodec([OLD_KEY]).decode(CookieCodec([OLD_KEY, NEW_KEY]).encode(handle))


def test_keys_derived_once_sign_and_verify_as_itsdangerous_defaults_do(
        handle: SessionHandle) -> None:
    """The codec derives its keys once at start (key_derivation "none" over the derived
    keys): cookies issued before that change, signed with itsdangerous's default per-call
    derivation, still verify, and the signatures are byte for byte the same."""
    import base64

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    payload = f"{b64(handle.session_id)}.{b64(handle.secret)}"
    default = Signer([OLD_KEY, NEW_KEY], salt=SALT, digest_method=hashlib.sha256)
    before = "v1." + default.sign(payload).decode()
    codec = CookieCodec([OLD_KEY, NEW_KEY])
    assert codec.encode(handle) == before
    assert codec.decode(before) == handle
    old_only = "v1." + Signer([OLD_KEY], salt=SALT, digest_method=hashlib.sha256).sign(
        payload).decode()
    assert codec.decode(old_only) == handle


def test_a_verified_value_is_remembered_and_a_tampered_one_never_is(
        handle: SessionHandle) -> None:
    """A hot session's cookie is verified once (the value holds no time); the cache is by
    exact value, so a forged or altered value is still verified, and refused."""
    codec = CookieCodec([OLD_KEY])
    value = codec.encode(handle)
    first = codec.decode(value)
    assert codec.decode(value) is first
    forged = value[:-1] + ("A" if value[-1] != "A" else "B")
    for _ in range(2):
        with pytest.raises(CookieInvalid):
            codec.decode(forged)
    other = CookieCodec([OTHER_KEY])
    with pytest.raises(CookieInvalid):
        other.decode(value)


def test_the_verified_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cookie_codec, "VERIFIED_MAX", 3)
    codec = CookieCodec([OLD_KEY])
    values = [codec.encode(SessionHandle.new()) for _ in range(5)]
    for v in values:
        codec.decode(v)
    assert list(codec._verified) == values[-3:]
