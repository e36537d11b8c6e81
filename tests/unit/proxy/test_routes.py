"""Unit tests for route matching, upstream path building and the path-escape checks."""

from __future__ import annotations

import pytest

from bffgate.proxy import routes as routes_module
from bffgate.proxy.routes import (
    DEFAULT_METHODS,
    PathNotAllowed,
    Route,
    RouteTable,
    check_path,
)


def _route(prefix: str, upstream: str = "http://up:8000", *, strip: bool = False,
           matrix: bool = False, methods: tuple[str, ...] = DEFAULT_METHODS) -> Route:
    return Route(prefix=prefix, upstream=upstream, token="user", strip_prefix=strip,
                 timeout=30.0, methods=frozenset(methods),
                 allow_matrix_params=matrix)


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
        pytest.param("/a/~user/b", id="tilde"),
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


# Issue 7, finding 2: servlet containers read "..;" as "..", so "/api/..;/secret" escaped
# /api on the upstream. Each of these reached the upstream before the fix.
@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/..;/secret", id="dotdot-semicolon"),
        pytest.param("/api/..;x=1/secret", id="dotdot-with-param"),
        pytest.param("/api/.;/secret", id="dot-semicolon"),
        pytest.param("/api/..;", id="dotdot-semicolon-at-end"),
        pytest.param("/api/..%3b/secret", id="dotdot-encoded-semicolon"),
        pytest.param("/api/..%3B/secret", id="dotdot-encoded-semicolon-upper"),
        pytest.param("/api/x/..;jsessionid=1/../secret", id="dotdot-jsessionid"),
    ],
)
@pytest.mark.parametrize("matrix", [False, True], ids=["default", "matrix-allowed"])
def test_matrix_dot_segments_are_dot_segments(path: str, matrix: bool) -> None:
    """A segment whose part before ';' is '.' or '..' is refused, even where ';' is allowed."""
    with pytest.raises(PathNotAllowed) as info:
        check_path(path, allow_matrix_params=matrix)
    assert info.value.reason == "dot_segment"
    with pytest.raises(PathNotAllowed):
        RouteTable([_route("/api", matrix=matrix)]).resolve(path)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/api/a;b", id="param"),
        pytest.param("/api/a;jsessionid=x", id="jsessionid"),
        pytest.param("/api/;", id="bare-semicolon"),
        pytest.param("/api/a%3bb", id="encoded-semicolon"),
    ],
)
def test_semicolon_refused_unless_the_route_opts_in(path: str) -> None:
    """Without allow_matrix_params any ';' (raw or %3b) is refused; with it, it passes."""
    with pytest.raises(PathNotAllowed) as info:
        check_path(path)
    assert info.value.reason == "matrix_params"
    with pytest.raises(PathNotAllowed) as info:
        RouteTable([_route("/api")]).resolve(path)
    assert info.value.reason == "matrix_params"
    route = RouteTable([_route("/api", matrix=True)]).resolve(path)
    assert route is not None and route.prefix == "/api"


def test_matrix_params_match_like_a_servlet() -> None:
    """Routes are matched on the path without ';params' (as the upstream would read it),
    and a route that did not opt in cannot be reached through a parameterised prefix."""
    table = RouteTable([_route("/", matrix=True), _route("/admin")])
    with pytest.raises(PathNotAllowed) as info:
        table.resolve("/admin;x/users")  # not the permissive root route: /admin's rules
    assert info.value.reason == "matrix_params"
    assert table.match("/admin;x/users") is not None
    assert table.match("/admin;x/users").prefix == "/admin"  # type: ignore[union-attr]
    open_table = RouteTable([_route("/", matrix=True), _route("/admin", matrix=True)])
    with pytest.raises(PathNotAllowed) as info:
        open_table.resolve("/admin;x/users")  # params inside the prefix: refused
    assert info.value.reason == "matrix_params_in_prefix"
    assert open_table.resolve("/admin/users;v=2") is not None
    assert open_table.resolve("/site;v=1/x").prefix == "/"  # type: ignore[union-attr]


# Issue 7, finding 11: overlong UTF-8 forms of '.' and '/' reached the upstream as written.
@pytest.mark.parametrize(
    ("path", "reason"),
    [
        pytest.param("/api/%c0%ae%c0%ae/x", "invalid_utf8", id="overlong-2-byte-dotdot"),
        pytest.param("/api/%C0%AE/x", "invalid_utf8", id="overlong-2-byte-dot-upper"),
        pytest.param("/api/%e0%80%ae%e0%80%ae/x", "invalid_utf8", id="overlong-3-byte-dotdot"),
        pytest.param("/api/%f0%80%80%ae/x", "invalid_utf8", id="overlong-4-byte-dot"),
        pytest.param("/api/..%c0%af../x", "invalid_utf8", id="overlong-slash"),
        pytest.param("/api/..%e0%80%af/x", "invalid_utf8", id="overlong-3-byte-slash"),
        pytest.param("/api/%c1%9c/x", "invalid_utf8", id="overlong-backslash"),
        pytest.param("/api/%c0%2e", "encoded_separator_or_dot", id="lead-byte-then-dot"),
        pytest.param("/api/%80/x", "invalid_utf8", id="lone-continuation"),
        pytest.param("/api/%c3/x", "invalid_utf8", id="truncated-sequence"),
        pytest.param("/api/%ed%a0%80/x", "invalid_utf8", id="surrogate"),
        pytest.param("/api/%f8%88%80%80%80", "invalid_utf8", id="five-byte-form"),
        pytest.param("/api/%ff", "invalid_utf8", id="ff-byte"),
        pytest.param("/api/\xe9", "non_ascii", id="raw-latin1-byte"),
        pytest.param("/api/\xc3\xa9", "non_ascii", id="raw-utf8-bytes"),
    ],
)
def test_invalid_utf8_and_raw_non_ascii_refused(path: str, reason: str) -> None:
    """Percent-encoded bytes must decode as strict UTF-8 (no overlong forms); raw bytes
    outside printable ASCII are refused (a client percent-encodes them)."""
    with pytest.raises(PathNotAllowed) as info:
        check_path(path)
    assert info.value.reason == reason


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/a/%C3%A9t%C3%A9", id="two-byte"),
        pytest.param("/a/%E2%82%AC", id="three-byte-euro"),
        pytest.param("/a/%F0%9F%98%80", id="four-byte-emoji"),
        pytest.param("/a/%c2%ae", id="registered-sign-not-a-dot"),
    ],
)
def test_valid_utf8_passes(path: str) -> None:
    assert check_path(path) == path


def test_route_methods_and_allow_header() -> None:
    """A route lists its methods; the 405 Allow value keeps the usual order."""
    route = _route("/ro", methods=("HEAD", "GET", "PROPFIND"))
    assert route.allow_header == b"GET, HEAD, PROPFIND"
    assert "TRACE" not in _route("/api").methods
    assert _route("/api").allow_header == b"GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"


def test_resolved_paths_are_remembered_refused_ones_never(monkeypatch) -> None:
    """A path's verdict is its own: kept (bounded, oldest out) for paths that resolved,
    never for refused ones, which are checked again each time."""
    monkeypatch.setattr(routes_module, "RESOLVED_MAX", 2)
    table = RouteTable([_route("/api")])
    api = table.resolve("/api/a")
    assert api is not None and table.resolve("/api/a") is api
    assert table.resolve("/other") is None
    for _ in range(2):
        with pytest.raises(PathNotAllowed):
            table.resolve("/api/../etc")
    table.resolve("/api/b")
    assert list(table._resolved) == ["/other", "/api/b"]
    assert table.resolve("/a" * 200 + "/x") is None  # long paths are not kept
    assert "/a" * 200 + "/x" not in table._resolved
