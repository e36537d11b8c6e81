"""Integration: the admin listener (endpoints/admin.py): readiness and metrics after a login,
with the whole gateway in-process (support/inprocess.py)."""

from __future__ import annotations

import httpx
import pytest

from support.inprocess import Harness

pytestmark = pytest.mark.integration


async def test_metrics_and_readiness(h: Harness) -> None:
    await h.login()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=h.gw.admin),
                                 base_url="http://admin") as admin:
        assert (await admin.get("/readyz")).status_code == 200
        text = (await admin.get("/metrics")).text
    assert 'bffgate_login_results_total{outcome="succeeded",reason="ok"} 1.0' in text
