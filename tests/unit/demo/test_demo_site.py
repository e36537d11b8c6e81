"""The demo page: served at /, self-contained, stable element ids, a strict CSP."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx

from bffgate.demo.site import create_demo_site


async def get_index() -> httpx.Response:
    app = create_demo_site()
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://site.test"
    ) as client:
        return await client.get("/")


async def test_index_is_served_with_the_elements_the_browser_test_uses() -> None:
    response = await get_index()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    html = response.text
    for element_id in ("state-loading", "state-signed-out", "state-signed-in", "state-ended",
                       "state-logged-out", "call-api", "post-api", "api-result", "logout",
                       "gateway-panel", "document-cookie", "bearer-evidence",
                       "cookie-evidence", "csrf-evidence"):
        assert f'id="{element_id}"' in html
    assert html.count('class="login"') == 3  # signed out, session ended, logged out
    assert "bffgate demo — not for production" in html
    assert "/bff/user" in html
    assert "'X-CSRF': '1'" in html or '"X-CSRF": "1"' in html
    assert "/bff/login?returnUrl=/" in html
    assert html.lower().count("not signed in") == 1


async def test_page_has_a_flow_diagram_and_no_inline_handlers() -> None:
    html = (await get_index()).text
    assert '<svg class="flow"' in html and 'role="img"' in html
    assert not re.search(r"\son[a-z]+\s*=", html)  # no onclick= etc. (the CSP forbids them)
    assert "style=" not in html  # no style attributes either: only the hashed <style> block


async def test_page_loads_nothing_from_elsewhere() -> None:
    html = (await get_index()).text
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html)
    assert "innerHTML" not in html


async def test_csp_allows_exactly_the_inline_script_and_style() -> None:
    response = await get_index()
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "connect-src 'self'" in csp
    assert "unsafe-inline" not in csp
    for tag in ("script", "style"):
        block = re.search(rf"<{tag}>(.*?)</{tag}>", response.text, re.DOTALL)
        assert block is not None
        digest = base64.b64encode(hashlib.sha256(block.group(1).encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
