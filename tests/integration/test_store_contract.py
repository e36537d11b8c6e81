"""Integration tests: the shared SessionStore contract against a real redis-server and
against the in-memory store (unit-level, same suite)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from contract.store_contract import StoreContract

from bffgate.store.memory import MemoryStore
from bffgate.store.redis import RedisStore

pytestmark = pytest.mark.integration


class TestRedisStore(StoreContract):
    @pytest.fixture
    async def store(self, redis_store: RedisStore) -> AsyncIterator[RedisStore]:
        yield redis_store


class TestMemoryStore(StoreContract):
    @pytest.fixture
    async def store(self) -> AsyncIterator[MemoryStore]:
        yield MemoryStore()
