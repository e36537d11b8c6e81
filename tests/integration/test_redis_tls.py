"""Integration tests: the store over ``rediss://`` (TLS) against a real redis-server with a
certificate from a throwaway CA made here, verified by the client (no verification bypass)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from bffgate.errors import StoreUnavailable
from bffgate.store.redis import RedisStore, create_redis_client
from contract.store_contract import StoreContract
from support.idp import free_port
from support.pki import write_pki
from support.redis import RedisServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    d = tmp_path_factory.mktemp("redis-tls")
    ca, cert, key = write_pki(d)
    tls_port = free_port()
    server = RedisServer(extra_args=["--tls-port", str(tls_port), "--tls-cert-file", str(cert),
                                     "--tls-key-file", str(key), "--tls-ca-cert-file", str(ca),
                                     "--tls-auth-clients", "no"])
    with server:
        yield tls_port, ca


class TestRedisStoreOverTLS(StoreContract):
    @pytest.fixture
    async def store(self, tls_redis: tuple[int, Path]) -> AsyncIterator[RedisStore]:
        port, ca = tls_redis
        s = RedisStore(create_redis_client(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"),
                       key_prefix="tls:")
        await s._r.flushdb()
        yield s
        await s.close()


async def test_untrusted_certificate_is_refused(tls_redis: tuple[int, Path]) -> None:
    """Without the CA the client must fail closed, not fall back to an unverified link."""
    port, _ = tls_redis
    store = RedisStore(create_redis_client(f"rediss://127.0.0.1:{port}/0", timeout=1))
    with pytest.raises(StoreUnavailable):
        await store.ping()
    await store.close()
