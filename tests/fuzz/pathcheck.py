"""What a lenient hop downstream could make of a path: the oracle of the path properties and
of the raw-socket fuzzer (never imported by the gateway)."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes

MAX_ROUNDS = 4


def lenient_utf8(data: bytes) -> str:
    """Decode UTF-8 the way old servlet containers and IIS did: overlong forms accepted
    (``c0 ae`` is ``.``, ``e0 80 af`` is ``/``), bytes that fit no sequence taken as latin-1."""
    out, i = [], 0
    while i < len(data):
        b = data[i]
        n = 1 if 0xC0 <= b < 0xE0 else 2 if 0xE0 <= b < 0xF0 else 3 if 0xF0 <= b < 0xF8 else 0
        tail = data[i + 1:i + 1 + n]
        if n and len(tail) == n and all(0x80 <= t < 0xC0 for t in tail):
            cp = b & (0x3F >> n)
            for t in tail:
                cp = (cp << 6) | (t & 0x3F)
            out.append(chr(cp) if cp <= 0x10FFFF else "\ufffd")
            i += n + 1
        else:
            out.append(chr(b))
            i += 1
    return "".join(out)


_PERCENT_U = re.compile(r"%[uU]([0-9A-Fa-f]{4})")


def decoded_forms(path: str, *, overlong: bool) -> list[str]:
    """The path raw, then percent-decoded again and again until stable (bounded). With
    ``overlong``, as lenient servers do: overlong UTF-8 and IIS's ``%uXXXX`` too."""
    forms, current = [path], path
    for _ in range(MAX_ROUNDS):
        text = _PERCENT_U.sub(lambda m: chr(int(m.group(1), 16)), current) if overlong \
            else current
        raw = unquote_to_bytes(text)
        nxt = lenient_utf8(raw) if overlong else raw.decode("utf-8", "replace")
        if nxt == current:
            break
        forms.append(nxt)
        current = nxt
    return forms


def segments(form: str) -> list[str]:
    return form.replace("\\", "/").split("/")


def dot_segment(form: str, *, matrix: bool) -> str | None:
    """The first ``.``/``..`` segment in ``form`` (with ``matrix``: also ``..;x``, the part
    before ``;`` being what servlet containers compare), else None."""
    for seg in segments(form):
        name = seg.split(";", 1)[0] if matrix else seg
        if name in (".", ".."):
            return seg
    return None


def escape_in(path: str, *, matrix: bool = True, overlong: bool = True) -> str | None:
    """Describe how ``path`` could decode to a dot segment, or None if it never does."""
    for form in decoded_forms(path, overlong=overlong):
        seg = dot_segment(form, matrix=matrix)
        if seg is not None:
            return f"{form!r} has segment {seg!r}"
    return None
