"""Open-redirect guard: validation of the returnUrl given to /bff/login and /bff/logout."""

from __future__ import annotations

import re
import string
import unicodedata
from typing import Final
from urllib.parse import unquote, urlsplit

__all__ = ["MAX_DECODE_ROUNDS", "REASONS", "ReturnUrlRejected", "check_return_url"]

#: How many rounds of percent-decoding are examined.  After that many rounds the
#: path must be stable (one more round changes nothing), else it is "over_encoded".
MAX_DECODE_ROUNDS: Final = 3

#: Every value ``ReturnUrlRejected.reason`` can take (stable, for audit and metrics).
REASONS: Final = frozenset(
    {
        "empty",  # "" (no value at all)
        "too_long",  # over max_length characters (== bytes: accepted values are ASCII)
        "backslash",  # a raw "\" anywhere
        "control_char",  # a raw C0 control or DEL anywhere
        "whitespace",  # a raw space (or other whitespace) anywhere
        "non_ascii",  # any other raw character outside printable ASCII
        "scheme",  # urlsplit sees a scheme (raw or in a decoded form)
        "netloc",  # urlsplit sees an authority (raw or in a decoded form)
        "unparseable",  # urlsplit raised
        "not_local",  # does not start with exactly one "/"
        "bad_percent",  # "%" not followed by two hex digits, in the path
        "bad_utf8",  # percent-decoded path bytes are not UTF-8 (e.g. overlong "%c0%af")
        "over_encoded",  # path still changes after MAX_DECODE_ROUNDS decodes
        "encoded_separator",  # a decoded "/", "\" or "." where it can break out
        "encoded_control",  # a decoded control or format character in the path
        "encoded_whitespace",  # decoded whitespace in the path
        "unicode_confusable",  # decoded non-ASCII char whose NFKC form is a delimiter
        "double_slash",  # "//" (or "/ /", "/\t/", ...) inside the path
        "dot_segment",  # "/./" or "/../" inside the path
    }
)

# oauth2-proxy's invalidRedirectRegex (pkg/app/redirect/validator.go), unanchored:
# a slash or backslash, then only whitespace or one/two dots, then a slash or backslash.
# Python's str ``\s`` already covers \v and Unicode whitespace.
_SLASH_TRICK: Final = re.compile(r"[/\\](?:\s*|\.{1,2})[/\\]")

_HEX: Final = frozenset(string.hexdigits)

# Characters that must never *appear* via NFKC folding of a decoded non-ASCII
# character: URL delimiters and the two slashes (e.g. U+FF3C FULLWIDTH REVERSE
# SOLIDUS -> "\", U+FF0F -> "/", U+FF0E / U+2024 -> ".", U+FF1A -> ":").
_NFKC_FORBIDDEN: Final = frozenset("/\\.:?#@%")

# Unicode categories never allowed in a decoded path: controls, format characters
# (zero-width, bidi overrides, BOM), surrogates, and separators (whitespace).
_BAD_CATEGORIES_CONTROL: Final = frozenset({"Cc", "Cf", "Cs"})
_BAD_CATEGORIES_SPACE: Final = frozenset({"Zs", "Zl", "Zp"})


class ReturnUrlRejected(ValueError):
    """A ``returnUrl`` that is not a safe same-origin path; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, value: str) -> None:
        super().__init__(f"returnUrl rejected: {reason}")
        self.reason: str = reason
        #: The rejected value, untouched. Escape and cap it before logging it.
        self.value: str = value


def check_return_url(value: str, max_length: int = 2048) -> str:
    """Return ``value`` unchanged if it is a safe local path, else raise ReturnUrlRejected.

    Accepted: a same-origin, path-absolute reference such as ``/``,
    ``/orders/42?tab=1#x`` or ``/a/b?q=%20x``.  Everything else is rejected,
    never "fixed": the login endpoint answers 400 rather than falling back to ``/``
    (checklist item 16; oauth2-proxy issue #2635).

    ``value`` is the parameter as the web framework hands it over, i.e. already
    percent-decoded once from the query string; it is what would be put into
    ``Location``.  The rules, in the order they are checked:

    1. Non-empty and at most ``max_length`` characters (2 KB by default).
    2. Every raw character is printable ASCII (0x21-0x7E) and not ``\\``.
       Browsers drop TAB/CR/LF anywhere and strip leading/trailing C0+space, and
       treat ``\\`` as ``/`` (WHATWG URL), so ``/\\t/evil``, ``/\\evil`` and
       ``" //evil"`` become ``//evil``.  Raw non-ASCII is rejected outright
       (fullwidth ``U+FF3C``, Unicode spaces, kana look-alikes...): a real
       browser's ``location.pathname + location.search`` is always ASCII, and a
       non-ASCII ``Location`` header is mangled by latin-1 header encoding.
    3. ``urlsplit`` sees neither a scheme nor a netloc, and the value starts with
       exactly one ``/`` (``//host`` is protocol-relative; ``///host`` is
       normalised to ``//host`` by browsers).
    4. The *path part* (up to the first raw ``?`` or ``#``) is examined raw and in
       each percent-decoded form, decoding at most MAX_DECODE_ROUNDS times until
       stable (a form still changing after that is rejected).  Decoding must use
       well-formed ``%XX`` escapes and produce valid UTF-8 (no overlong ``%c0%af``).
       The raw value is what the browser resolves; the decoded forms are what
       any later hop that decodes and re-emits the path (an upstream, the SPA's
       router, a second redirect) would produce.  In every form:

       - no ``\\``, no control/format character, no whitespace (ASCII or Unicode),
         and no non-ASCII character whose NFKC form contains ``/ \\ . : ? # @ %``;
       - it still starts with one ``/`` and the second character is not ``/``
         or ``\\`` (``/%2f%2fevil``, ``/%5cevil``, double-encoded variants);
       - oauth2-proxy's ``[/\\\\](?:[\\s\\v]*|\\.{1,2})[/\\\\]`` matches nowhere: no
         ``//``, ``/./``, ``/../``, ``/ /`` anywhere in the path, because dot-segment
         removal can turn ``/x/..//evil`` into the path ``//evil``, which is a
         protocol-relative URL the moment anything re-emits it.
       - the second path position must not be a percent-escape decoding to
         ``/``, ``\\`` or ``.`` (checklist: "no % sequence that decodes to /, \\, .,
         a control character or whitespace in the first two path positions");
         the first position is always the raw ``/``.  A raw ``.`` there is fine
         (``/.well-known/x``).

    5. The whole value, decoded up to MAX_DECODE_ROUNDS times, never shows
       ``urlsplit`` a scheme or netloc and never starts with ``//`` or ``/\\``
       (a belt-and-braces restatement of 3/4 for the whole string).

    Why the query and fragment are treated differently from the path: the host a
    browser navigates to is decided only by what precedes the path, and the
    query/fragment cannot change it (``?`` and ``#`` end the path).  So in the
    query and fragment, *percent-encoded* whitespace, controls, ``//`` or even a
    full URL are data, not structure, and are accepted (``/a/b?q=%20x``,
    ``/search?next=https%3A%2F%2Fx``); raw controls, whitespace and ``\\`` are
    still refused there by rule 2 because browsers act on those before
    splitting.  Malformed ``%`` in the query is tolerated for the same reason.
    In the path, however, decoded whitespace/controls are refused even deep
    inside (``/my%20file`` is rejected): they are never needed by this gateway's
    SPA routes and they are exactly what turns a path into ``//`` after another
    decode.  Decoded ``?``/``#`` in the path only shorten it and are allowed.
    """
    if not value:
        raise ReturnUrlRejected("empty", value)
    if len(value) > max_length:
        raise ReturnUrlRejected("too_long", value)

    _check_raw_chars(value)
    _check_no_authority(value)
    if not value.startswith("/") or value.startswith("//"):
        raise ReturnUrlRejected("not_local", value)

    path = _path_part(value)
    _check_percent_syntax(path, value)
    decoded_paths = _decoded_forms_strict(path, value)
    for form in (path, *decoded_paths):
        _check_path_form(form, value, decoded=form is not path)
    if path[1:2] == "%":
        final = decoded_paths[-1] if decoded_paths else path
        if final[1:2] in ("/", "\\", "."):
            raise ReturnUrlRejected("encoded_separator", value)

    for form in _decoded_forms_lenient(value):
        _check_no_authority(form, original=value)
        if not form.startswith("/") or form[1:2] in ("/", "\\"):
            raise ReturnUrlRejected("encoded_separator", value)
    return value


def _check_raw_chars(value: str) -> None:
    for ch in value:
        if ch == "\\":
            raise ReturnUrlRejected("backslash", value)
        code = ord(ch)
        if code < 0x20 or code == 0x7F:
            raise ReturnUrlRejected("control_char", value)
        if ch == " ":
            raise ReturnUrlRejected("whitespace", value)
        if code > 0x7F:
            category = unicodedata.category(ch)
            if ch.isspace() or category in _BAD_CATEGORIES_SPACE:
                raise ReturnUrlRejected("whitespace", value)
            if category in _BAD_CATEGORIES_CONTROL:
                raise ReturnUrlRejected("control_char", value)
            raise ReturnUrlRejected("non_ascii", value)


def _check_no_authority(form: str, original: str | None = None) -> None:
    shown = form if original is None else original
    try:
        parts = urlsplit(form)
    except ValueError:
        raise ReturnUrlRejected("unparseable", shown) from None
    if parts.scheme:
        raise ReturnUrlRejected("scheme", shown)
    if parts.netloc:
        raise ReturnUrlRejected("netloc", shown)


def _path_part(value: str) -> str:
    end = len(value)
    for sep in ("?", "#"):
        idx = value.find(sep)
        if idx != -1:
            end = min(end, idx)
    return value[:end]


def _check_percent_syntax(path: str, value: str) -> None:
    idx = path.find("%")
    while idx != -1:
        if len(path) < idx + 3 or path[idx + 1] not in _HEX or path[idx + 2] not in _HEX:
            raise ReturnUrlRejected("bad_percent", value)
        idx = path.find("%", idx + 3)


def _decoded_forms_strict(path: str, value: str) -> list[str]:
    """Successive percent-decodings of the path, strict UTF-8; stable within the limit."""
    forms: list[str] = []
    current = path
    for _ in range(MAX_DECODE_ROUNDS + 1):
        try:
            decoded = unquote(current, errors="strict")
        except UnicodeDecodeError:
            raise ReturnUrlRejected("bad_utf8", value) from None
        if decoded == current:
            return forms
        if len(forms) == MAX_DECODE_ROUNDS:
            raise ReturnUrlRejected("over_encoded", value)
        forms.append(decoded)
        current = decoded
    raise ReturnUrlRejected("over_encoded", value)  # pragma: no cover - loop returns


def _decoded_forms_lenient(value: str) -> list[str]:
    """Up to MAX_DECODE_ROUNDS successive decodings of the whole value."""
    forms: list[str] = []
    current = value
    for _ in range(MAX_DECODE_ROUNDS):
        decoded = unquote(current, errors="replace")
        if decoded == current:
            break
        forms.append(decoded)
        current = decoded
    return forms


def _check_path_form(form: str, value: str, *, decoded: bool) -> None:
    if decoded:
        if not form.startswith("/") or form[1:2] in ("/", "\\"):
            raise ReturnUrlRejected("encoded_separator", value)
        for ch in form:
            _check_decoded_char(ch, value)
    match = _SLASH_TRICK.search(form)
    if match is not None:
        reason = "dot_segment" if "." in match.group() else "double_slash"
        raise ReturnUrlRejected(reason, value)


def _check_decoded_char(ch: str, value: str) -> None:
    if ch == "\\":
        raise ReturnUrlRejected("encoded_separator", value)
    code = ord(ch)
    if code < 0x20 or code == 0x7F:
        raise ReturnUrlRejected("encoded_control", value)
    if ch.isspace():
        raise ReturnUrlRejected("encoded_whitespace", value)
    if code <= 0x7F:
        return
    category = unicodedata.category(ch)
    if category in _BAD_CATEGORIES_SPACE:
        raise ReturnUrlRejected("encoded_whitespace", value)
    if category in _BAD_CATEGORIES_CONTROL:
        raise ReturnUrlRejected("encoded_control", value)
    folded = unicodedata.normalize("NFKC", ch)
    if any(c in _NFKC_FORBIDDEN or ord(c) < 0x20 or c.isspace() for c in folded):
        raise ReturnUrlRejected("unicode_confusable", value)
