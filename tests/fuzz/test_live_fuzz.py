"""The bounded raw-socket fuzz run (CI sample, fixed seed): every input family against a live
``bffgate serve`` with redis-server, the oidc-provider test IdP and a recording upstream,
under httptools and under h11; family ``admin`` against the admin listener, after which the
gateway must be healthy and the session alive. The criteria are in tests/fuzz/rawfuzz.py; the long run is
``python3 -m tests.fuzz.rawfuzz --inputs 100000`` (README "Development")."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from fuzz.rawfuzz import fuzz
from fuzz.stack import Stack
from support.gateway import ADMIN_TOKEN

pytestmark = pytest.mark.fuzz

SEED = 20261201


# (family, inputs): the whole sample stays well under a minute on two busy cores.
FAMILIES = [
    pytest.param("paths", 120, id="paths"),
    pytest.param("paths_matrix", 40, id="paths_matrix"),
    pytest.param("methods", 60, id="methods"),
    pytest.param("methods_refused", 40, id="methods_refused"),
    pytest.param("headers", 100, id="headers"),
    pytest.param("duplicates", 40, id="duplicates"),
    pytest.param("framing", 80, id="framing"),
    pytest.param("upgrade", 60, id="upgrade"),
    pytest.param("pipelining", 60, id="pipelining"),
    pytest.param("pipelining_garbage", 40, id="pipelining_garbage"),
    pytest.param("cookies", 100, id="cookies"),
    pytest.param("bodies", 60, id="bodies"),
    pytest.param("request_lines", 40, id="request_lines"),
    pytest.param("mutate", 80, id="mutate"),
    pytest.param("bff", 80, id="bff"),
    pytest.param("aborts", 40, id="aborts"),
    pytest.param("admin", 150, id="admin"),
]
# The framing and smuggling families again with uvicorn's other parser (h11, a plain install).
H11_FAMILIES = [pytest.param(f, n, id=f"h11-{f}") for f, n in
                (("framing", 60), ("upgrade", 40), ("pipelining", 30),
                 ("pipelining_garbage", 30), ("headers", 40), ("request_lines", 30),
                 ("mutate", 60), ("admin", 40))]


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    s = Stack.start()
    yield s
    s.close()


@pytest.fixture(scope="module")
def stack_h11() -> Iterator[Stack]:
    s = Stack.start(http_parser="h11")
    yield s
    s.close()


def _check(stack: Stack, family: str, n: int) -> None:
    run = fuzz(stack, family, n, SEED, workers=4, stop_on_violation=True)
    assert not run.violations, "\n".join(str(v) for v in run.violations[:15])
    assert run.counts["inputs"] == n
    if family == "admin":
        _after_admin(stack, run.counts["relogins"])


def _after_admin(stack: Stack, relogins: int) -> None:
    """The admin listener still answers, and no admin input ended the session: it still
    proxies and is still listed (the family only ever reads it or names lookalikes)."""
    cookie = stack.session_cookie
    with httpx.Client(trust_env=False, timeout=10) as client:
        assert client.get(stack.gateway.admin_url + "/healthz").json() == {"status": "ok"}
        listed = client.get(stack.gateway.admin_url + "/admin/sessions",
                            params={"sub": stack.sub},
                            headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
        assert stack.admin_id in {s["id"] for s in listed.json()["sessions"]}, listed.text
        api = client.get(stack.gateway.url + "/api/after-admin",
                         headers={"x-csrf": "1", "cookie": f"__Host-bffgate={cookie}"})
        assert api.status_code == 200, api.text
    assert relogins == 0


@pytest.mark.parametrize(("family", "n"), FAMILIES)
def test_live_fuzz(stack: Stack, family: str, n: int) -> None:
    _check(stack, family, n)


@pytest.mark.parametrize(("family", "n"), H11_FAMILIES)
def test_live_fuzz_h11(stack_h11: Stack, family: str, n: int) -> None:
    _check(stack_h11, family, n)
