"""Unit tests for route matching, upstream path building and the path-escape checks."""

from __future__ import annotations

import pytest

from bffgate.proxy.routes import PathNotAllowed, Route, RouteTable, check_path


def _route(prefix: str, upstream: str = "http://up:8000", *, strip: bool = False) -> Route:
    return Route(prefix=prefix, upstream=upstream, token="user", strip_prefix=strip,
                 timeout=30.0, name=prefix)


@pytest.fixture
def table() -> RouteTable:
    return RouteTable([
        _route("/", "http://site:3000"),
        _route("/api", "http://api:8000"),
        _route("/api/orders", "http://orders:8000"),
        _route("/api/orders/admin", "http://admin:8000"),
        _route("/files", "http://files:8000"),
    ])


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("/api", "/api", id="exact-prefix"),
        pytest.param("/api/", "/api", id="prefix-with-trailing-slash"),
        pytest.param("/api/users/1", "/api", id="under-prefix"),
        pytest.param("/api/orders", "/api/orders", id="longer-prefix-exact"),
        pytest.param("/api/orders/42", "/api/orders", id="longer-prefix-wins"),
        pytest.param("/api/orders/admin/x", "/api/orders/admin", id="longest-of-three"),
        pytest.param("/api/ordersx", "/api", id="segment-boundary-longer"),
        pytest.param("/apix", "/", id="segment-boundary-falls-to-root"),
        pytest.param("/api-v2/x", "/", id="dash-is-not-a-boundary"),
        pytest.param("/files/a.txt", "/files", id="other-prefix"),
        pytest.param("/", "/", id="root"),
        pytest.param("/index.html", "/", id="root-catch-all"),
        pytest.param("/API/orders", "/", id="case-sensitive"),
    ],
)
def test_longest_prefix_on_segment_boundaries(path: str, expected: str, table: RouteTable) -> None:
    """The longest prefix ending on a '/' boundary wins; the root route catches the rest."""
    route = table.match(path)
    assert route is not None
    assert route.prefix == expected


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/", id="root"),
        pytest.param("/apix", id="prefix-lookalike"),
        pytest.param("/ap", id="prefix-of-prefix"),
        pytest.param("/other/api", id="prefix-not-at-start"),
    ],
)
def test_no_route_without_a_root_route(path: str) -> None:
    """Without a '/' route, unmatched paths give None."""
    assert RouteTable([_route("/api")]).match(path) is None


def test_routes_are_ordered_longest_first() -> None:
    """Declaration order does not matter; the table is sorted by prefix length."""
    table = RouteTable([_route("/"), _route("/a"), _route("/a/b/c"), _route("/a/b")])
    assert [r.prefix for r in table.routes] == ["/a/b/c", "/a/b", "/a", "/"]


@pytest.mark.parametrize(
    ("prefix", "upstream", "strip", "path", "expected"),
    [
        pytest.param("/api", "http://up", False, "/api/users", "/api/users", id="keep-prefix"),
        pytest.param("/api", "http://up", True, "/api/users", "/users", id="strip-prefix"),
        pytest.param("/api", "http://up", True, "/api", "/", id="strip-exact-prefix"),
        pytest.param("/api", "http://up", True, "/api/", "/", id="strip-prefix-slash"),
        pytest.param("/api", "http://up/v1", True, "/api/users", "/v1/users",
                     id="strip-with-base-path"),
        pytest.param("/api", "http://up/v1/", True, "/api/users", "/v1/users",
                     id="base-path-trailing-slash"),
        pytest.param("/api", "http://up/v1", False, "/api/users", "/v1/api/users",
                     id="keep-with-base-path"),
        pytest.param("/api", "http://up/v1", True, "/api", "/v1/", id="exact-prefix-base-path"),
        pytest.param("/", "http://up", True, "/a/b", "/a/b", id="root-strip-is-noop"),
        pytest.param("/", "http://up/site", False, "/a", "/site/a", id="root-with-base-path"),
        pytest.param("/api", "http://up", True, "/api/a%20b/%25", "/a%20b/%25",
                     id="encoding-preserved"),
    ],
)
def test_upstream_path(prefix: str, upstream: str, strip: bool, path: str, expected: str) -> None:
    """strip_prefix removes the route prefix; the upstream's base path is prepended."""
    route = _route(prefix, upstream, strip=strip)
    assert RouteTable.upstream_path(route, path) == expected


def test_upstream_origin_and_base_path() -> None:
    """A route splits its upstream into origin (for the pool) and base path."""
    route = _route("/api", "https://orders.internal:8443/v2/")
    assert route.upstream_origin == "https://orders.internal:8443"
    assert route.upstream_base_path == "/v2"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/orders", id="plain"),
        pytest.param("/api/orders/", id="trailing-slash"),
        pytest.param("/", id="root"),
        pytest.param("/api/a%20b", id="encoded-space"),
        pytest.param("/a/100%25", id="encoded-percent-alone"),
        pytest.param("/a/%25", id="encoded-percent-segment"),
        pytest.param("/a/b.c/d..e/.well-known", id="dots-inside-names"),
        pytest.param("/a/...", id="three-dots"),
        pytest.param("/a/%C3%A9t%C3%A9", id="encoded-utf8"),
        pytest.param("/a/~user/b;c=d", id="tilde-and-params"),
        pytest.param("/a/%3F%23", id="encoded-query-and-fragment-chars"),
        pytest.param("/a/" + "x" * 8000, id="long-but-under-limit"),
    ],
)
def test_check_path_accepts_normal_paths(path: str) -> None:
    """Ordinary paths pass unchanged (the raw path is what is forwarded)."""
    assert check_path(path) == path


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        pytest.param("/api/../admin", "dot_segment", id="dot-dot"),
        pytest.param("/api/..", "dot_segment", id="dot-dot-at-end"),
        pytest.param("/api/./x", "dot_segment", id="dot"),
        pytest.param("/api/.", "dot_segment", id="dot-at-end"),
        pytest.param("/api/%2e%2e/admin", "encoded_separator_or_dot", id="encoded-dot-dot"),
        pytest.param("/api/%2E%2e/admin", "encoded_separator_or_dot", id="encoded-dot-dot-mixed"),
        pytest.param("/api/.%2e/admin", "encoded_separator_or_dot", id="half-encoded-dot-dot"),
        pytest.param("/api/%2e/admin", "encoded_separator_or_dot", id="encoded-dot"),
        pytest.param("/api/%252e%252e/admin", "encoded_separator_or_dot",
                     id="double-encoded-dot-dot"),
        pytest.param("/api/%252f", "encoded_separator_or_dot", id="double-encoded-slash"),
        pytest.param("/api/%25252e", "encoded_separator_or_dot", id="triple-encoded-dot"),
        pytest.param("/api/a%2fb", "encoded_separator_or_dot", id="encoded-slash"),
        pytest.param("/api/a%2Fb", "encoded_separator_or_dot", id="encoded-slash-upper"),
        pytest.param("/api/a%5cb", "encoded_separator_or_dot", id="encoded-backslash"),
        pytest.param("/api/a%5Cb", "encoded_separator_or_dot", id="encoded-backslash-upper"),
        pytest.param("/api/a%00", "encoded_separator_or_dot", id="encoded-nul"),
        pytest.param("/api/a\\..\\b", "control_or_backslash", id="backslash"),
        pytest.param("/api/a\x00", "control_or_backslash", id="raw-nul"),
        pytest.param("/api/a\tb", "control_or_backslash", id="raw-tab"),
        pytest.param("/api/a b", "control_or_backslash", id="raw-space"),
        pytest.param("/api/a\x7f", "control_or_backslash", id="raw-del"),
        pytest.param("/api/a%0d%0aX:%20y", "control_or_backslash", id="encoded-crlf"),
        pytest.param("/api/a%09", "control_or_backslash", id="encoded-tab"),
        pytest.param("/api/a%7F", "control_or_backslash", id="encoded-del"),
        pytest.param("/api/a%1b", "control_or_backslash", id="encoded-escape"),
        pytest.param("/api//admin", "empty_segment", id="double-slash"),
        pytest.param("//api", "empty_segment", id="leading-double-slash"),
        pytest.param("/api///", "empty_segment", id="triple-slash-at-end"),
        pytest.param("api/x", "not_absolute", id="relative"),
        pytest.param("", "not_absolute", id="empty"),
        pytest.param("*", "not_absolute", id="asterisk-form"),
        pytest.param("http://evil/x", "not_absolute", id="absolute-form"),
        pytest.param("/" + "x" * 8192, "too_long", id="too-long"),
    ],
)
def test_check_path_rejects_escapes(path: str, reason: str) -> None:
    """Anything that could reach an upstream path outside the route is refused, with a reason."""
    with pytest.raises(PathNotAllowed) as info:
        check_path(path)
    assert info.value.reason == reason
