"""Fixtures for the integration tier: a real redis-server per module, fresh key prefix per test."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import pytest

from bffgate.store.redis import RedisStore, create_redis_client
from support.inprocess import Harness, running_gateway
from support.redis import RedisServer


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer(appendonly=True) as server:
        yield server


@pytest.fixture
async def redis_store(redis_server: RedisServer) -> AsyncIterator[RedisStore]:
    store = RedisStore(create_redis_client(redis_server.url, timeout=1.0),
                       key_prefix=f"t{secrets.token_hex(4)}:")
    yield store
    await store.close()


@pytest.fixture(params=["memory", "redis"])
async def h(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """The whole gateway in-process (support/inprocess.py), once per session store."""
    async with running_gateway(request.param) as harness:
        yield harness
