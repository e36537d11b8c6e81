"""compact_json.dumps: what the store keeps reads back, with the stdlib, to the same values."""

from __future__ import annotations

import json
import math

from hypothesis import given
from hypothesis import strategies as st

from bffgate import compact_json

_SCALARS = (st.none() | st.booleans() | st.integers() | st.text()
            | st.floats(allow_nan=False, allow_infinity=False))
_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(), inner, max_size=4), max_leaves=20)


@given(_JSON)
def test_reads_back_to_the_same_values(doc: object) -> None:
    assert json.loads(compact_json.dumps(doc)) == doc


def test_compact_utf8_as_the_stdlib_writes_it() -> None:
    doc = {"sub": "zoë", "claims": {"name": "Zoë 😀", "n": 3, "x": None}, "at": "a.b.c"}
    assert compact_json.dumps(doc) == json.dumps(
        doc, separators=(",", ":"), ensure_ascii=False).encode()


def test_what_orjson_refuses_is_written_by_the_stdlib() -> None:
    doc = {"big": 2**70, "neg": -(2**65)}  # an IdP's claim may hold such an integer
    assert json.loads(compact_json.dumps(doc)) == doc


def test_nan_which_json_cannot_write_becomes_null() -> None:
    assert json.loads(compact_json.dumps({"x": math.nan, "y": math.inf})) == {"x": None,
                                                                                 "y": None}
