"""The demo single-page app: one static page that talks to the gateway on its own origin."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

_INLINE = {
    "script": re.compile(r"<script>(.*?)</script>", re.DOTALL),
    "style": re.compile(r"<style>(.*?)</style>", re.DOTALL),
}


def _hashes(html: str, tag: str) -> str:
    sources = []
    for block in _INLINE[tag].findall(html):
        digest = hashlib.sha256(block.encode("utf-8")).digest()
        sources.append(f"'sha256-{base64.b64encode(digest).decode('ascii')}'")
    return " ".join(sources) or "'none'"


def content_security_policy(html: str) -> str:
    """A strict CSP allowing exactly the page's inline script and style, and fetch to itself."""
    return (
        f"default-src 'none'; script-src {_hashes(html, 'script')}; "
        f"style-src {_hashes(html, 'style')}; connect-src 'self'; img-src data:; "
        "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def load_index() -> str:
    """The packaged ``static/index.html``."""
    return files("bffgate.demo").joinpath("static/index.html").read_text(encoding="utf-8")


def create_demo_site() -> Starlette:
    """Build the app serving the demo page at ``/``."""
    html = load_index()
    headers = {
        "Content-Security-Policy": content_security_policy(html),
        "Cache-Control": "no-cache",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
    }

    async def index(request: Request) -> Response:
        return HTMLResponse(html, headers=headers)

    return Starlette(routes=[Route("/", index, methods=["GET"])])
