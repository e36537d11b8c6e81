"""Unit tests for the returnUrl open-redirect guard (security checklist item 16)."""

from __future__ import annotations

import random
import re
from pathlib import Path
from urllib.parse import unquote_plus, urljoin, urlsplit

import pytest

from bffgate.endpoints.return_url import REASONS, ReturnUrlRejected, check_return_url

BASE = "https://app.example.com/x"
HOST = "app.example.com"
CORPUS = Path(__file__).resolve().parents[2] / "data" / "openredirects.txt"

# Checklist item 16, "Values that must be rejected", in order.
CHECKLIST_REJECTED = [
    pytest.param("https://evil.example/", id="absolute-https"),
    pytest.param("//evil.example", id="protocol-relative"),
    pytest.param("///evil.example", id="triple-slash"),
    pytest.param("/\\evil.example", id="slash-backslash"),
    pytest.param("\\/evil.example", id="backslash-slash"),
    pytest.param("/%09/evil.example", id="encoded-tab"),
    pytest.param("/%2f%2fevil.example", id="encoded-double-slash"),
    pytest.param("/%5cevil.example", id="encoded-backslash"),
    pytest.param("/\t/evil.example", id="raw-tab"),
    pytest.param("/ /evil.example", id="raw-space"),
    pytest.param("/\n/evil.example", id="raw-lf"),
    pytest.param("/\r\n/evil.example", id="raw-crlf"),
    pytest.param(" //evil.example", id="leading-space"),
    pytest.param("\x00//evil.example", id="leading-nul"),
    pytest.param("https:evil.example", id="scheme-no-slashes"),
    pytest.param("http:/evil.example", id="scheme-one-slash"),
    pytest.param("javascript:alert(1)", id="javascript"),
    pytest.param("JaVaScRiPt:alert(1)", id="javascript-mixed-case"),
    pytest.param("data:text/html;base64,PHNjcmlwdD4=", id="data-uri"),
    pytest.param("https://app.example.com.evil.example/", id="suffix-host"),
    pytest.param("https://app.example.com@evil.example/", id="userinfo-host"),
    pytest.param("https://evil.example/?https://app.example.com", id="host-in-query"),
    pytest.param("/./\\evil.example", id="dot-backslash"),
    pytest.param("/./../../\\evil.example", id="dot-dot-backslash"),
    pytest.param("/%0d%0aSet-Cookie:%20x=y", id="encoded-crlf-header-injection"),
    pytest.param("%68%74%74%70%3a%2f%2f%65%76%69%6c", id="fully-encoded-http-evil"),
    pytest.param("\uff3c/evil.example", id="fullwidth-backslash"),
    pytest.param("/" + "a" * 10 * 1024, id="10KB"),
]

# More rejections: oauth2-proxy's own table, Duende IsLocalUrlTests, and this
# module's documented rules.  Each with the reason the module reports.
MORE_REJECTED = [
    pytest.param("", "empty", id="empty"),
    pytest.param("/ \\evil.com", "whitespace", id="o2p-space-double-slash"),
    pytest.param("/\t\\evil.com", "control_char", id="o2p-tab-backslash"),
    pytest.param("/\v/evil.com", "control_char", id="o2p-vtab"),
    pytest.param("/\r/evil.com", "control_char", id="o2p-cr"),
    pytest.param("/ \t/evil.com", "whitespace", id="duende-space-tab"),
    pytest.param("/\t\t/\t/evil.com", "control_char", id="o2p-triple-tab"),
    pytest.param("/a\x7f", "control_char", id="raw-del"),
    pytest.param("/\u3000/evil.com", "whitespace", id="ideographic-space"),
    pytest.param("/\u200b/evil.com", "control_char", id="zero-width-space"),
    pytest.param("/caf\u00e9", "non_ascii", id="raw-non-ascii"),
    pytest.param("/\uff0f/evil.com", "non_ascii", id="fullwidth-slash"),
    pytest.param("redirect", "not_local", id="relative"),
    pytest.param("foo.bar/redirect", "not_local", id="o2p-missing-protocol"),
    pytest.param("//[evil", "unparseable", id="bad-ipv6-netloc"),
    pytest.param("/a//b", "double_slash", id="inner-double-slash"),
    pytest.param("/x/..//evil.com", "dot_segment", id="dot-dot-then-double-slash"),
    pytest.param("/a/./b", "dot_segment", id="inner-dot-segment"),
    pytest.param("/%2e%2e/%2fevil.com", "dot_segment", id="encoded-dot-dot"),
    pytest.param("/%2ewell-known", "encoded_separator", id="encoded-dot-position-2"),
    pytest.param("/%252f%252fevil.com", "encoded_separator", id="double-encoded-slashes"),
    pytest.param("/%25255cevil.com", "encoded_separator", id="triple-encoded-backslash"),
    pytest.param("/%2525252fevil.com", "over_encoded", id="quadruple-encoded"),
    pytest.param("/%c0%afevil.com", "bad_utf8", id="overlong-utf8-slash"),
    pytest.param("/100%", "bad_percent", id="bare-percent-in-path"),
    pytest.param("/a%zz", "bad_percent", id="bad-hex-in-path"),
    pytest.param("/%00", "encoded_control", id="encoded-nul"),
    pytest.param("/my%20file", "encoded_whitespace", id="encoded-space-in-path"),
    pytest.param("/%e3%80%80/evil.com", "encoded_whitespace", id="encoded-ideographic-space"),
    pytest.param("/%ef%bc%bcevil.com", "unicode_confusable", id="encoded-fullwidth-backslash"),
    pytest.param("/a%ef%bc%8f%ef%bc%8fb", "unicode_confusable", id="encoded-fullwidth-slashes"),
    pytest.param("/a%e2%80%aeb", "encoded_control", id="encoded-bidi-override"),
    pytest.param("/a%5cb", "encoded_separator", id="encoded-backslash-deep"),
    pytest.param("/%3f//evil.com", "double_slash", id="encoded-qmark-then-slashes"),
]

ACCEPTED = [
    pytest.param("/", id="root"),
    pytest.param("/orders/42?tab=1#x", id="path-query-fragment"),
    pytest.param("/a/b?q=%20x", id="encoded-space-in-query"),
    pytest.param("/redirect", id="o2p-single-slash"),
    pytest.param("/.well-known/x", id="raw-dot-position-2"),
    pytest.param("/caf%C3%A9", id="encoded-utf8-path"),
    pytest.param("/search?next=https%3A%2F%2Fevil.example", id="url-in-query"),
    pytest.param("/search?next=//evil.example", id="slashes-in-query"),
    pytest.param("/a?x=%0d%0a", id="encoded-crlf-in-query"),
    pytest.param("/a?q=100%", id="bare-percent-in-query"),
    pytest.param("/a#/route//x", id="spa-hash-route"),
    pytest.param("/@evil.example", id="at-sign-path"),
    pytest.param("/:evil.example", id="colon-path"),
    pytest.param("/a:b/c", id="colon-in-first-segment"),
    pytest.param("/..", id="trailing-dot-dot"),
    pytest.param("/%3Fx", id="encoded-qmark-position-2"),
    pytest.param("/" + "a" * 2047, id="exactly-2KB"),
]


def go_query_unescape(s: str) -> str:
    """Go's url.QueryUnescape as validator_test.go applies it to each corpus line.

    "+" becomes a space, %XX escapes are decoded, and a malformed escape is an
    error (the Go test expects none).  Invalid UTF-8 bytes become U+FFFD, which is
    what Starlette's query-string parsing hands the endpoint.
    """
    if re.search(r"%(?![0-9A-Fa-f]{2})", s):
        raise ValueError(f"invalid URL escape in {s!r}")
    return unquote_plus(s, errors="replace")


def corpus_lines() -> list[str]:
    """Lines as Go's bufio.ScanLines yields them: split on LF, drop a trailing CR."""
    text = CORPUS.read_text(encoding="utf-8")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


CORPUS_LINES = corpus_lines()


def assert_rejected(value: str) -> ReturnUrlRejected:
    with pytest.raises(ReturnUrlRejected) as info:
        check_return_url(value)
    assert info.value.reason in REASONS
    assert isinstance(info.value, ValueError)
    return info.value


def assert_stays_on_host(value: str) -> None:
    joined = urlsplit(urljoin(BASE, value))
    assert joined.netloc == HOST, (value, joined)
    assert joined.scheme == "https"
    assert value.startswith("/")
    assert not value.startswith("//")


@pytest.mark.parametrize("value", CHECKLIST_REJECTED)
def test_checklist_values_rejected(value: str) -> None:
    assert_rejected(value)


@pytest.mark.parametrize(("value", "reason"), MORE_REJECTED)
def test_more_values_rejected_with_reason(value: str, reason: str) -> None:
    assert reason in REASONS
    assert assert_rejected(value).reason == reason


@pytest.mark.parametrize("value", ACCEPTED)
def test_accepted_values_returned_unchanged(value: str) -> None:
    assert check_return_url(value) == value


@pytest.mark.parametrize("value", ACCEPTED)
def test_accepted_values_keep_the_host(value: str) -> None:
    assert_stays_on_host(value)


def test_reported_reasons_for_key_checklist_values() -> None:
    expected = {
        "https://evil.example/": "scheme",
        "//evil.example": "netloc",
        "///evil.example": "not_local",
        "/\\evil.example": "backslash",
        "/%09/evil.example": "encoded_control",
        "/%2f%2fevil.example": "encoded_separator",
        "/%5cevil.example": "encoded_separator",
        "/\t/evil.example": "control_char",
        "/ /evil.example": "whitespace",
        "javascript:alert(1)": "scheme",
        "/%0d%0aSet-Cookie:%20x=y": "encoded_control",
        "%68%74%74%70%3a%2f%2f%65%76%69%6c": "not_local",
        "/" + "a" * 10 * 1024: "too_long",
    }
    got = {value: assert_rejected(value).reason for value in expected}
    assert got == expected


def test_max_length_is_configurable() -> None:
    assert check_return_url("/abcd", max_length=5) == "/abcd"
    assert assert_rejected_with("/abcde", max_length=5).reason == "too_long"


def assert_rejected_with(value: str, *, max_length: int) -> ReturnUrlRejected:
    with pytest.raises(ReturnUrlRejected) as info:
        check_return_url(value, max_length=max_length)
    return info.value


def test_rejection_keeps_the_value_for_the_audit() -> None:
    err = assert_rejected("//evil.example")
    assert err.value == "//evil.example"
    assert "netloc" in str(err)


def test_corpus_is_the_oauth2_proxy_file() -> None:
    raw = CORPUS.read_bytes()
    assert raw.endswith(b"\n")
    assert b"\r" not in raw
    assert len(CORPUS_LINES) >= 300
    assert CORPUS_LINES[0] == ""  # the Go test's first case is the empty redirect
    assert "/%2f%2fexample.com" in CORPUS_LINES
    assert "javascript:alert(1)" in CORPUS_LINES


@pytest.mark.parametrize(
    "line", [pytest.param(line, id=f"line{n}") for n, line in enumerate(CORPUS_LINES, 1)]
)
def test_oauth2_proxy_corpus_rejected(line: str) -> None:
    assert_rejected(go_query_unescape(line))


@pytest.mark.parametrize(
    "line", [pytest.param(line, id=f"line{n}") for n, line in enumerate(CORPUS_LINES, 1)]
)
def test_oauth2_proxy_corpus_rejected_without_unescaping(line: str) -> None:
    # The same attack strings, handed over as-is (e.g. double-encoded by the client).
    assert_rejected(line)


FUZZ_ALPHABET = ["/", "\\", ".", "%", "2", "f", "5", "c", "0", "9", "a", ":", "@", " ", "\t"]


def fuzz_values(seed: int = 20240516, count: int = 2000) -> list[str]:
    rng = random.Random(seed)
    values = []
    for i in range(count):
        body = "".join(rng.choice(FUZZ_ALPHABET) for _ in range(rng.randint(1, 12)))
        # Half start with "/" so that a useful share gets past the first rule.
        values.append("/" + body if i % 2 == 0 else body)
    return values


def test_fuzz_accepted_values_stay_on_host() -> None:
    values = fuzz_values()
    assert len(values) == 2000
    accepted = []
    reasons = set()
    for value in values:
        try:
            result = check_return_url(value)
        except ReturnUrlRejected as err:
            reasons.add(err.reason)
            continue
        assert result == value
        assert_stays_on_host(value)
        accepted.append(value)
    assert reasons <= REASONS
    # The fuzz must exercise the accept path too, not only rejections.
    assert len(accepted) >= 20, accepted


# Whole percent-escapes as tokens, so that the decoding rules get exercised more
# than by single characters (which mostly trip the raw-character rules).
FUZZ_TOKENS = ["/", ".", "a", ":", "@", "?", "#", "%2f", "%5c", "%2e", "%09", "%20", "%25", "%3f"]


def test_fuzz_percent_tokens_accepted_values_stay_on_host() -> None:
    rng = random.Random(7)
    accepted = 0
    reasons = set()
    for _ in range(2000):
        value = "/" + "".join(rng.choice(FUZZ_TOKENS) for _ in range(rng.randint(1, 8)))
        try:
            check_return_url(value)
        except ReturnUrlRejected as err:
            reasons.add(err.reason)
            continue
        assert_stays_on_host(value)
        # Whatever a later hop decodes it into must stay on the host as well.
        for decoded in (unquote_plus(value), unquote_plus(unquote_plus(value))):
            path = decoded.split("?", 1)[0].split("#", 1)[0]
            assert "//" not in path
            assert "\\" not in path
            assert_stays_on_host(decoded)
        accepted += 1
    assert reasons <= REASONS
    assert accepted >= 20
