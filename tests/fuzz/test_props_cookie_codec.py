"""Property tests: the session cookie codec accepts exactly the strings it encoded."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from bffgate.crypto.cookie_codec import (
    CookieCodec,
    CookieInvalid,
    SessionHandle,
    binding_hash,
    binding_matches,
)

pytestmark = pytest.mark.fuzz

KEY_A, KEY_B = "k" * 43, "another-cookie-key-of-some-length-xyz"
handles = st.builds(SessionHandle, st.binary(min_size=32, max_size=32),
                    st.binary(min_size=32, max_size=32))
keys = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=16, max_size=64)
# Anything a client can put in a Cookie header value (latin-1 decoded), plus Unicode.
junk = st.one_of(st.text(max_size=600), st.text(st.characters(max_codepoint=0xFF), max_size=200))
B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@st.composite
def mutations(draw: st.DrawFn, value: str) -> str:
    """One edit a forger (or a broken proxy) could make to a cookie value."""
    i = draw(st.integers(0, len(value) - 1))
    ch = draw(st.sampled_from(B64 + "+/=.~ \"%"))
    kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate", "append", "case",
                                 "pad", "swap", "quote", "plus"]))
    if kind == "replace":
        return value[:i] + ch + value[i + 1:]
    if kind == "insert":
        return value[:i] + ch + value[i:]
    if kind == "delete":
        return value[:i] + value[i + 1:]
    if kind == "truncate":
        return value[:i]
    if kind == "append":
        return value + draw(st.text(min_size=1, max_size=4))
    if kind == "case":
        return value[:i] + value[i].swapcase() + value[i + 1:]
    if kind == "pad":
        return value + "=" * draw(st.integers(1, 2))
    if kind == "swap":
        j = draw(st.integers(0, len(value) - 1))
        chars = list(value)
        chars[i], chars[j] = chars[j], chars[i]
        return "".join(chars)
    if kind == "quote":
        return f'"{value}"'
    return value.replace("-", "+").replace("_", "/")  # standard base64 alphabet


@given(handles, keys)
def test_encoded_value_decodes_to_the_same_handle(handle: SessionHandle, key: str) -> None:
    codec = CookieCodec([key])
    value = codec.encode(handle)
    decoded = codec.decode(value)
    assert (decoded.session_id, decoded.secret) == (handle.session_id, handle.secret)
    assert codec.encode(decoded) == value  # decode/encode is a fixed point


@given(handles, st.data())
def test_any_mutation_of_an_encoded_value_is_refused(handle: SessionHandle,
                                                     data: st.DataObject) -> None:
    codec = CookieCodec([KEY_A])
    value = codec.encode(handle)
    mutated = data.draw(mutations(value))
    assume(mutated != value)
    with pytest.raises(CookieInvalid):
        codec.decode(mutated)


@given(handles)
def test_a_value_signed_with_another_key_is_refused(handle: SessionHandle) -> None:
    with pytest.raises(CookieInvalid):
        CookieCodec([KEY_A]).decode(CookieCodec([KEY_B]).encode(handle))


@given(handles)
def test_rotation_old_values_still_verify_new_key_signs(handle: SessionHandle) -> None:
    old, rotated = CookieCodec([KEY_A]), CookieCodec([KEY_A, KEY_B])
    assert rotated.decode(old.encode(handle)).session_id == handle.session_id
    with pytest.raises(CookieInvalid):
        old.decode(rotated.encode(handle))


@given(junk)
def test_arbitrary_input_only_ever_raises_cookie_invalid(value: str) -> None:
    with pytest.raises(CookieInvalid):
        CookieCodec([KEY_A]).decode(value)


@given(junk, st.text(max_size=200))
def test_login_binding_check_never_raises(value: str, other: str) -> None:
    assert binding_matches(value, binding_hash(value)) == (0 < len(value) <= 128)
    if other != value:
        assert not binding_matches(other, binding_hash(value))
    assert not binding_matches(None, binding_hash(value))
