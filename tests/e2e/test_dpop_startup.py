"""E2E: `bffgate serve` refuses oidc.dpop = true at startup when the IdP does not take ES256
DPoP proofs (no dpop_signing_alg_values_supported), naming the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from support.dpop_upstream import DpopIdp
from support.e2e import CLIENT_ID, CLIENT_SECRET, COOKIE_KEY, client_meta
from support.gateway import child_env, gateway_config, new_ports, write_toml

pytestmark = pytest.mark.e2e


def test_startup_refuses_dpop_on_an_idp_without_it(redis_server, upstream,
                                                   tmp_path: Path) -> None:
    """oidc.dpop = true against an IdP that lists no dpop_signing_alg_values_supported:
    `bffgate serve` exits 1 at startup with a message naming oidc.dpop."""
    port, admin = new_ports()
    with DpopIdp([client_meta(port)], enabled=False) as op:
        config = gateway_config(port=port, admin_port=admin, issuer=op.issuer,
                                client_id=CLIENT_ID, client_secret=CLIENT_SECRET,
                                redis_url=redis_server.url, upstream=upstream.url,
                                cookie_key=COOKIE_KEY, oidc={"dpop": True})
        path = tmp_path / "bffgate.toml"
        write_toml(path, config)
        done = subprocess.run([sys.executable, "-m", "bffgate", "serve", "--config", str(path)],
                              capture_output=True, text=True, timeout=30, env=child_env(),
                              stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "oidc.dpop: the IdP" in done.stderr
    assert "dpop_signing_alg_values_supported" in done.stderr
