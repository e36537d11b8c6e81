"""Property tests: the Redis change-channel message parser (store/redis_changes.py
``_deliver``). Whatever a message holds (bytes or text, any length, no separator, many), it
never raises (a raise would end the process's ``follow_changes`` task, and with it every
later invalidation) and tells exactly one change: ``<key> <digits>`` is a rewrite to that
generation, anything else after the key reads as "deleted" (drop it: the safe reading)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bffgate.store.base import SessionChanges
from bffgate.store.redis_changes import _deliver

pytestmark = pytest.mark.fuzz


class Heard(SessionChanges):
    def __init__(self) -> None:
        super().__init__()
        self.told: list[tuple[str | None, int | None]] = []
        self.add(lambda key, generation: self.told.append((key, generation)))


KEYS = st.one_of(st.text(alphabet="0123456789abcdef", min_size=0, max_size=64),
                 st.binary(max_size=40).map(lambda b: b.decode("latin-1")))
GENERATIONS = st.one_of(st.integers(0, 2**63).map(str), st.sampled_from(
    ["-", "", " ", "+1", "-1", "1 2", "0x1f", "1.5", "\u0661", "\u00b2", "1\n", "NaN"]),
    st.text(max_size=20))


@st.composite
def messages(draw: st.DrawFn) -> object:
    """What redis-py hands over (the store's client does not decode: bytes), shaped like a
    change or not, and the odd non-bytes value."""
    if draw(st.booleans()):
        text = f"{draw(KEYS)} {draw(GENERATIONS)}" if draw(st.booleans()) else draw(KEYS)
        return text.encode("utf-8", "surrogatepass")
    return draw(st.one_of(st.binary(max_size=300), st.none(), st.integers(),
                          st.just(bytearray(b"k 1"))))


@given(messages())
def test_any_message_tells_one_change_and_never_raises(data: object) -> None:
    heard = Heard()
    _deliver(heard, data)
    assert len(heard.told) == 1
    key, generation = heard.told[0]
    assert isinstance(key, str)
    assert generation is None or (isinstance(generation, int) and generation >= 0)


@given(st.text(alphabet="0123456789abcdef", min_size=1, max_size=64), st.integers(0, 2**63))
def test_a_rewrite_is_read_back_as_published(key: str, generation: int) -> None:
    heard = Heard()
    _deliver(heard, f"{key} {generation}".encode())
    assert heard.told == [(key, generation)]
    _deliver(heard, f"{key} -".encode())
    assert heard.told[-1] == (key, None)


@pytest.mark.parametrize("data", [b"k " + b"9" * 4301, "k \u00b2", b"k 99999999999999999999"])
def test_digits_int_refuses_or_beyond_64_bits_read_as_deleted(data: object) -> None:
    """Found by the fuzz run: int() refuses 4,301 digits and '²' (which str.isdigit()
    admits); both raised out of _deliver. Now anything but 1-19 ASCII digits is "deleted"."""
    heard = Heard()
    _deliver(heard, data)
    assert heard.told == [("k", None)]
