"""Unit tests for bffgate.edge.fields: the duplicate rule (single_header / single_cookie) and
cookie parsing."""

from __future__ import annotations

import pytest

from bffgate.edge.fields import cookie_values, list_header, single_cookie, single_header
from bffgate.errors import AmbiguousRequest, BadRequest

H = list[tuple[bytes, bytes]]


def _h(*pairs: tuple[str, str]) -> H:
    return [(k.encode("latin-1"), v.encode("latin-1")) for k, v in pairs]


# --- single_header: one place decides that a duplicate is a 400, never a guess ---------

@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([], None, id="absent"),
        pytest.param([("x-csrf", "1")], "1", id="once"),
        pytest.param([("x-csrf", "")], "", id="empty-value"),
        pytest.param([("X-CSRF", "1")], "1", id="name-case-insensitive"),
        pytest.param([("x-other", "1"), ("x-csrf", "1")], "1", id="among-others"),
    ],
)
def test_single_header_returns_the_one_value(headers: list[tuple[str, str]],
                                             expected: str | None) -> None:
    assert single_header(_h(*headers), b"x-csrf") == expected


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([("x-csrf", "1"), ("x-csrf", "2")], id="two-lines-different"),
        pytest.param([("x-csrf", "1"), ("x-csrf", "1")], id="two-lines-same"),
        pytest.param([("x-csrf", "1"), ("x-a", "b"), ("x-csrf", "1")], id="apart"),
        pytest.param([("x-csrf", "1, 2")], id="comma-list"),
        pytest.param([("x-csrf", "1,1")], id="comma-list-same"),
    ],
)
def test_single_header_refuses_duplicates_and_lists(headers: list[tuple[str, str]]) -> None:
    with pytest.raises(AmbiguousRequest) as info:
        single_header(_h(*headers), b"x-csrf")
    assert info.value.reason == "duplicate_header:x-csrf"
    assert info.value.status == 400 and isinstance(info.value, BadRequest)
    assert "x-csrf" in info.value.detail
    assert "1" not in info.value.detail.replace("x-csrf", "")  # no value echoed


def test_list_header_combines_lines_in_order() -> None:
    """RFC 9110 5.3: several lines of a list header are one comma-separated list."""
    headers = _h(("x-forwarded-for", "1.1.1.1, 2.2.2.2"), ("x-a", "b"),
                 ("x-forwarded-for", "3.3.3.3"))
    assert list_header(headers, b"x-forwarded-for") == "1.1.1.1, 2.2.2.2, 3.3.3.3"
    assert list_header([], b"x-forwarded-for") is None


# --- cookies -----------------------------------------------------------------------------

NAME = "__Host-bffgate"


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        pytest.param([], [], id="no-cookie-header"),
        pytest.param(["a=1; __Host-bffgate=v1.x; b=2"], ["v1.x"], id="among-others"),
        pytest.param(["__Host-bffgate=v1.x"], ["v1.x"], id="alone"),
        pytest.param(['__Host-bffgate="v1.x"'], ["v1.x"], id="quoted"),
        pytest.param(["__Host-bffgate=a=b"], ["a=b"], id="equals-in-value"),
        pytest.param(["__host-bffgate=v1.x"], [], id="name-case-sensitive"),
        pytest.param(["\u2000__Host-bffgate=v1.x"], [], id="unicode-space-lookalike"),
        pytest.param(["__Host-bffgatex=v1.x"], [], id="longer-name"),
        pytest.param(["__Host-bffgate"], [], id="no-equals"),
        pytest.param(["__Host-bffgate=1; __Host-bffgate=2"], ["1", "2"], id="twice-one-header"),
        pytest.param(["__Host-bffgate=1", "__Host-bffgate=2"], ["1", "2"], id="twice-two-headers"),
        pytest.param(["\t__Host-bffgate = v1.x "], [], id="space-before-equals-is-another-name"),
    ],
)
def test_cookie_values(cookies: list[str], expected: list[str]) -> None:
    headers = [(b"cookie", c.encode("utf-8")) for c in cookies]
    assert cookie_values(headers, NAME) == expected


@pytest.mark.parametrize(
    "cookies",
    [
        pytest.param(["__Host-bffgate=1; __Host-bffgate=2"], id="one-header"),
        pytest.param(["__Host-bffgate=1", "__Host-bffgate=2"], id="two-headers"),
        pytest.param(["__Host-bffgate=1; a=b; __Host-bffgate=1"], id="same-value-twice"),
        pytest.param(["a=1; __Host-bffgate=1", "b=2; __Host-bffgate="], id="second-empty"),
    ],
)
def test_single_cookie_refuses_a_second_copy(cookies: list[str]) -> None:
    """Two session cookies (tossed or injected) are a 400, never 'first wins'."""
    headers = [(b"cookie", c.encode("latin-1")) for c in cookies]
    with pytest.raises(AmbiguousRequest) as info:
        single_cookie(headers, NAME)
    assert info.value.reason == f"duplicate_cookie:{NAME}"
    assert NAME in info.value.detail


def test_single_cookie_one_or_none() -> None:
    assert single_cookie([(b"cookie", b"a=1; __Host-bffgate=v")], NAME) == "v"
    assert single_cookie([(b"cookie", b"a=1")], NAME) is None
    # another cookie name twice is not ours to judge
    assert single_cookie([(b"cookie", b"a=1; a=2; __Host-bffgate=v")], NAME) == "v"
