"""Property tests: an accepted path never decodes to a dot segment and never leaves its
route's prefix, however many times and however leniently a later hop decodes it."""

from __future__ import annotations

import ada_url
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bffgate.proxy.routes import PathNotAllowed, Route, RouteTable, check_path
from fuzz.pathcheck import escape_in

pytestmark = pytest.mark.fuzz

PLAIN = ["a", "api", "x", "users", "1", "%41", "%20", "~", "-", "_", "!", "$", "'", "(", "=",
         "@", ":", ",", "+", "*", "%7e", "%e2%82%ac"]
DOTS = [".", "..", "...", "%2e", "%2E", ".%2e", "%2e.", "%2e%2e", "%252e", "%25", "%",
        "%2f", "%2F", "%5c", "\\", "%00", "\x00", "%0a", "%ff", "%25%32%65"]
MATRIX = [";", "..;", ".;", "..;x=1", ";jsessionid=1", "%3b", "..%3b", "%2e%2e;", "%2e%2e%3b"]
OVERLONG = ["%c0%ae", "%c0%ae%c0%ae", "%e0%80%ae", "%e0%80%ae%e0%80%ae", "%c0%af", "..%c0%af",
            "%c0%2e", "%f0%80%80%ae", "%c1%8e", "%e0%80%af", "%c0%ae.", "%u002e",
            "%uff0e"]


def paths(*extra: list[str]) -> st.SearchStrategy[str]:
    pool = PLAIN + DOTS + [t for group in extra for t in group]
    seg = st.lists(st.sampled_from(pool), min_size=0, max_size=3).map("".join)
    return st.one_of(
        st.lists(seg, min_size=1, max_size=6).map(lambda s: "/" + "/".join(s)),
        st.lists(seg, min_size=1, max_size=6).map(lambda s: "/api/" + "/".join(s)),
        st.text(max_size=40).map(lambda s: "/" + s),
    )


ANY_PATH = paths(MATRIX, OVERLONG)


def _accepted(path: str) -> bool:
    try:
        accepted = check_path(path)
    except PathNotAllowed as exc:
        reason = exc.reason
    else:
        assert accepted == path
        return True
    assert reason
    return False


@given(ANY_PATH)
def test_check_path_raises_only_path_not_allowed_and_is_idempotent(path: str) -> None:
    if _accepted(path):
        assert check_path(check_path(path)) == path


@given(ANY_PATH)
@example("/%25%32%65")  # "%2e" once decoded, "." twice (found by the live fuzzer)
@example("/api/%25%32%65%25%32%65/x")
@example("/api/%%32%65%%32%65/x")
@example("/api/%25%32%66%25%32%66evil")
def test_accepted_path_never_decodes_to_a_dot_segment(path: str) -> None:
    if _accepted(path):
        assert escape_in(path, matrix=False, overlong=False) is None


@given(paths(MATRIX))
def test_accepted_path_has_no_matrix_dot_segment(path: str) -> None:
    if _accepted(path):
        assert escape_in(path, matrix=True, overlong=False) is None


@given(paths(OVERLONG))
@example("/opt/%u002e")  # IIS's %uXXXX: "." (found by the live fuzzer)
@example("/api/%u002e%u002e/x")
def test_accepted_path_has_no_overlong_dot_segment(path: str) -> None:
    if _accepted(path):
        assert escape_in(path, matrix=False, overlong=True) is None


prefixes = st.lists(st.sampled_from(["api", "apix", "a", "pub", "v1", "x-y"]), min_size=1,
                    max_size=3).map(lambda s: "/" + "/".join(s))
route_sets = st.lists(st.tuples(prefixes, st.booleans(), st.sampled_from(["", "/base", "/b/c"])),
                      min_size=1, max_size=4, unique_by=lambda t: t[0])


def _table(spec: list[tuple[str, bool, str]], root: bool) -> RouteTable:
    routes = [Route(p, "http://up.internal:8081" + base, "user", strip, 3.0)
              for p, strip, base in spec]
    if root:
        routes.append(Route("/", "http://up.internal:8081/root", "none", False, 3.0))
    return RouteTable(routes)


@given(route_sets, st.booleans(), ANY_PATH)
def test_match_is_the_longest_segment_prefix_and_stays_under_it(
        spec: list[tuple[str, bool, str]], root: bool, path: str) -> None:
    table = _table(spec, root)
    route = table.match(path)
    fits = [r for r in table.routes
            if r.prefix == "/" or path == r.prefix or path.startswith(r.prefix + "/")]
    if not fits:
        assert route is None
        return
    assert route is not None and len(route.prefix) == max(len(r.prefix) for r in fits)
    if not _accepted(path):
        return
    upstream = RouteTable.upstream_path(route, path)
    base = route.upstream_base_path
    kept = base + (path[len(route.prefix):] if route.strip_prefix and route.prefix != "/"
                   else path)
    assert upstream == kept or upstream == base + "/"
    # What an upstream's WHATWG-style parser makes of it: still under the base path.
    resolved = ada_url.URL(route.upstream_origin + upstream).pathname
    assert resolved == base or resolved.startswith(base + "/") or (not base and resolved), \
        (path, upstream, resolved)
    if route.prefix != "/" and not route.strip_prefix:
        under = base + route.prefix
        assert resolved == under or resolved.startswith(under + "/"), (path, resolved)
