"""Reading request headers and cookies, with the duplicate rule.

Duplicates are never resolved silently: every header or cookie the gateway trusts is read
through ``single_header`` / ``single_cookie``, which raise ``AmbiguousRequest`` (400) when
it comes twice or, for a header, as a comma list (the combined form of two lines). The
one list header read, ``X-Forwarded-For`` from a trusted proxy, combines its lines in
order (RFC 9110 5.3): ``list_header``.
"""

from __future__ import annotations

from bffgate.errors import AmbiguousRequest

Headers = list[tuple[bytes, bytes]]


def header(headers: Headers, name: bytes) -> str | None:
    """The first value of ``name``: only for informational headers (User-Agent) and for
    framing headers checked elsewhere; anything the gateway trusts uses single_header."""
    for k, v in headers:
        if k.lower() == name:
            return v.decode("latin-1")
    return None


def single_header(headers: Headers, name: bytes) -> str | None:
    """The one value of header ``name`` (lower-case), or None; ``AmbiguousRequest`` when it
    is sent twice or as a comma list (what a proxy makes of two lines)."""
    found: str | None = None
    for k, v in headers:
        if k.lower() != name:
            continue
        if found is not None or b"," in v:
            raise _twice(name)
        found = v.decode("latin-1")
    return found


def refuse_second_copies(headers: Headers, names: frozenset[bytes],
                         cookies: tuple[str, ...]) -> None:
    """``single_header`` for each of ``names`` and ``single_cookie`` for each of
    ``cookies``, in one pass over the headers (every request pays for this check)."""
    seen: set[bytes] = set()
    with_cookies = False
    for k, v in headers:
        name = k.lower()
        if name in names:
            if name in seen or b"," in v:
                raise _twice(name)
            seen.add(name)
        elif name == b"cookie":
            with_cookies = True
    if with_cookies:
        for cookie in cookies:
            single_cookie(headers, cookie)


def _twice(name: bytes) -> AmbiguousRequest:
    label = name.decode("latin-1")
    return AmbiguousRequest(f"header {label} must be sent once, with one value",
                            reason=f"duplicate_header:{label}")


def list_header(headers: Headers, name: bytes) -> str | None:
    """All lines of a list-valued header combined in order (RFC 9110 5.3), or None."""
    lines = [v.decode("latin-1") for k, v in headers if k.lower() == name]
    return ", ".join(lines) if lines else None


def cookie_values(headers: Headers, name: str) -> list[str]:
    """Every value of cookie ``name``, across all Cookie headers (exact name match; no
    Unicode trimming, so a ``U+2000__Host-x`` lookalike never counts as ``__Host-x``)."""
    found = []
    for k, v in headers:
        if k.lower() != b"cookie":
            continue
        text = v.decode("latin-1")
        if name not in text:  # no part can be named so
            continue
        for part in text.split(";"):
            cname, sep, cval = part.strip(" \t").partition("=")
            if sep and cname == name:
                found.append(cval.strip(" \t").strip('"'))
    return found


def single_cookie(headers: Headers, name: str) -> str | None:
    """The one value of cookie ``name``, or None; ``AmbiguousRequest`` when it is sent twice
    (in one Cookie header or in two): a tossed or injected cookie, never "first wins"."""
    values = cookie_values(headers, name)
    if len(values) > 1:
        raise AmbiguousRequest(f"cookie {name} must be sent once; clear this site's cookies",
                               reason=f"duplicate_cookie:{name}")
    return values[0] if values else None
