"""Fixtures for the e2e tier: real redis-server, real oidc-provider, echo upstream, and
``bffgate serve`` as a separate process, all on 127.0.0.1 free ports."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from support.browser import Browser
from support.e2e import (  # noqa: F401 - re-exported for older imports
    CLIENT_ID,
    CLIENT_SECRET,
    COOKIE_KEY,
    client_meta,
    login,
    read_login_verifier,
    read_session_tokens,
    start_login,
)
from support.gateway import ALL_LOGS, GatewayProcess, gateway_config, new_ports
from support.idp import OidcProviderProcess
from support.redis import RedisServer
from support.secrets_scan import scan
from support.upstream import EchoUpstream


@pytest.fixture(scope="session", autouse=True)
def secret_scan_at_session_end() -> Iterator[None]:
    """The tier's invariant, checked once after every e2e test whatever the file order: no
    secret any test saw (tokens, code, verifier, client secret, keys, cookie) appears in a
    gateway log or in a response sent to a test browser. Autouse and session-scoped, it is
    set up before every other session fixture, so its teardown runs after the last gateway
    has stopped and written its last line. A leak is an error that fails the run."""
    yield
    leaks = scan(ALL_LOGS)
    if leaks:
        pytest.fail("secret scan: " + "; ".join(leaks), pytrace=False)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def gw_ports() -> tuple[int, int]:
    return new_ports()


@pytest.fixture(scope="session")
def idp(gw_ports: tuple[int, int]) -> Iterator[OidcProviderProcess]:
    clients = [client_meta(gw_ports[0]),
               client_meta(gw_ports[0], "bff-e2e-post", CLIENT_SECRET, "client_secret_post")]
    with OidcProviderProcess(clients, access_token_ttl=300) as op:
        yield op


@pytest.fixture(scope="session")
def upstream() -> Iterator[EchoUpstream]:
    up = EchoUpstream().start()
    yield up
    up.stop()


@pytest.fixture(scope="session")
def gateway(gw_ports: tuple[int, int], idp: OidcProviderProcess, redis_server: RedisServer,
            upstream: EchoUpstream) -> Iterator[GatewayProcess]:
    config = gateway_config(port=gw_ports[0], admin_port=gw_ports[1], issuer=idp.issuer,
                            client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                            redis_url=redis_server.url, upstream=upstream.url,
                            cookie_key=COOKIE_KEY)
    gw = GatewayProcess(config).start()
    yield gw
    gw.terminate()


@pytest.fixture
async def browser(gateway: GatewayProcess) -> Any:
    b = Browser(gateway.url)
    yield b
    await b.aclose()


@pytest.fixture
async def idp_client() -> Any:
    async with httpx.AsyncClient(trust_env=False, timeout=30) as c:
        yield c

