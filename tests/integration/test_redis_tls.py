"""Integration tests: the store over ``rediss://`` (TLS) against a real redis-server with a
certificate from a throwaway CA made here, verified by the client (no verification bypass)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bffgate.errors import StoreUnavailable
from bffgate.store.redis import RedisStore, create_redis_client
from contract.store_contract import StoreContract
from support.idp import free_port
from support.redis import RedisServer

pytestmark = pytest.mark.integration


def _write_pki(d: Path) -> tuple[Path, Path, Path]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bffgate test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=1))
          .not_valid_after(now + datetime.timedelta(hours=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = (d / "ca.pem", d / "server.pem", d / "server.key")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    d = tmp_path_factory.mktemp("redis-tls")
    ca, cert, key = _write_pki(d)
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
