"""Property tests: an accepted returnUrl always resolves, in a WHATWG parser, to the public
origin, in its raw form and in every percent-decoded form a later hop could produce."""

from __future__ import annotations

from urllib.parse import unquote

import ada_url
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bffgate.endpoints.return_url import REASONS, ReturnUrlRejected, check_return_url

pytestmark = pytest.mark.fuzz

ORIGIN = "http://localhost:8080"
BASE = ORIGIN + "/bff/callback"  # where the browser is when it follows the Location header

# Pieces that matter to URL parsers: separators and their encodings (single, double, overlong,
# fullwidth), dots, schemes, authorities, whitespace and controls.
TOKENS = [
    "/", "//", "\\", ".", "..", "%2e", "%2E", "%2f", "%2F", "%5c", "%252f", "%25", "%",
    "%c0%ae", "%c0%af", "%e0%80%ae", "%ef%bc%8f", "%ef%bc%8e", "%00", "%09", "%0a", "%0d",
    "%20", " ", "\t", "\n", "\r", "\x00", "\x7f", "@", ":", "?", "#", ";", "&", "=", "+",
    "http:", "https:", "javascript:", "//evil.example", "evil.example", "localhost",
    "\u3002", "\uff0f", "\uff3c", "\u2044", "\u00a0", "\u200b", "%e2%80%8b", "%u002f",
    "a", "b", "app", "x=1", "%41", "~", "!", "$", "'", "(", "*", ",",
]
fragments = st.lists(st.sampled_from(TOKENS), max_size=12).map("".join)
# Near-valid: "/" + segments built only from characters a check might let through.
PRINTABLE = [tok for tok in TOKENS if tok.isascii() and tok.isprintable() and " " not in tok]
near_valid = st.lists(st.lists(st.sampled_from(PRINTABLE), max_size=4).map("".join),
                      min_size=1, max_size=5).map(lambda segs: "/" + "/".join(segs))
candidates = st.one_of(
    near_valid,
    fragments,
    fragments.map(lambda s: "/" + s),
    st.text(max_size=64),
    st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=64)
    .map(lambda s: "/" + s),
)


def _whatwg(value: str) -> ada_url.URL:
    return ada_url.URL(value, base=BASE)


def _decoded_forms(value: str) -> list[str]:
    forms, current = [value], value
    for _ in range(4):
        nxt = unquote(current, errors="replace")
        if nxt == current:
            break
        forms.append(nxt)
        current = nxt
    return forms


@given(candidates)
def test_only_typed_rejections_and_unchanged_acceptance(value: str) -> None:
    try:
        accepted = check_return_url(value)
    except ReturnUrlRejected as exc:
        rejected = exc
    else:
        assert accepted == value
        assert check_return_url(accepted) == accepted  # idempotent
        return
    assert rejected.reason in REASONS
    assert rejected.value == value


@given(candidates)
def test_accepted_urls_stay_same_origin_in_every_decoded_form(value: str) -> None:
    try:
        check_return_url(value)
    except ReturnUrlRejected:
        return
    for form in _decoded_forms(value):
        try:
            url = _whatwg(form)
        except ValueError:
            continue  # a form no browser can parse cannot navigate anywhere
        assert url.origin == ORIGIN, (value, form, url.href)
        assert not url.username and not url.password, (value, form)
