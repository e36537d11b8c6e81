"""``bffgate demo``: gateway + dev IdP + demo API + demo page on loopback, memory store."""

from __future__ import annotations

import secrets
import sys
from typing import Any

from bffgate.config import load_settings

BANNER = """
  ==================================================================
   bffgate demo -- DEVELOPMENT ONLY, NOT FOR PRODUCTION
   built-in identity provider, in-memory sessions, random keys
  ==================================================================
"""


def demo_settings(port: int) -> tuple[Any, dict[str, int]]:
    ports = {"gateway": port, "idp": port + 1, "api": port + 2, "site": port + 3,
             "admin": port + 10}
    settings = load_settings(None, environ={}, overrides={
        "server": {"public_url": f"http://localhost:{port}", "listen": f"127.0.0.1:{port}",
                   "admin_listen": f"127.0.0.1:{ports['admin']}"},
        "oidc": {"issuer": f"http://127.0.0.1:{ports['idp']}", "client_id": "bffgate-demo",
                 "client_secret": secrets.token_urlsafe(24)},
        "session": {"store": "memory", "refresh_ahead": 30},
        "cookie": {"secret_keys": [secrets.token_urlsafe(32)]},
        "log": {"format": "console"},
        "routes": [
            {"prefix": "/api", "upstream": f"http://127.0.0.1:{ports['api']}", "token": "user"},
            {"prefix": "/", "upstream": f"http://127.0.0.1:{ports['site']}", "token": "none"},
        ],
    })
    return settings, ports


def run_demo(port: int = 8080, access_token_ttl: int = 120) -> int:
    from bffgate.app import Gateway
    from bffgate.demo.api import create_demo_api
    from bffgate.demo.devidp import create_dev_idp
    from bffgate.demo.site import create_demo_site
    from bffgate.logs import configure_logging
    from bffgate.server import run, serve_all

    settings, ports = demo_settings(port)
    configure_logging("info", "console")
    issuer = settings.oidc.issuer
    idp = create_dev_idp(
        issuer, settings.oidc.client_id, settings.oidc.client_secret.get(),
        redirect_uris=[settings.redirect_uri],
        post_logout_redirect_uris=[settings.public_origin + "/"],
        access_token_ttl=access_token_ttl,
        registration_hint=("bffgate demo registers only its own gateway's callback. For a "
                           "gateway of yours, run: bffgate demo --idp-only --redirect-uri URI"))
    api = create_demo_api(issuer + "/jwks", issuer)
    site = create_demo_site()
    print(BANNER, file=sys.stderr)

    async def main() -> None:
        gw = Gateway(settings)
        apps = [(idp, f"127.0.0.1:{ports['idp']}"), (api, f"127.0.0.1:{ports['api']}"),
                (site, f"127.0.0.1:{ports['site']}"), (gw.public, settings.server.listen),
                (gw.admin, settings.server.admin_listen)]
        await gw.start(warm_idp=False)

        def ready() -> None:
            print(f"\n  bffgate demo is running: open http://localhost:{port}/ in a browser\n"
                  f"  (identity provider {issuer}, any user name, no password)\n"
                  f"  admin: http://127.0.0.1:{ports['admin']}/metrics (also /healthz, /readyz)\n"
                  f"  Ctrl-C to stop.\n", file=sys.stderr, flush=True)

        try:
            await serve_all(apps, on_started=ready)
        finally:
            await gw.stop()

    run(main())
    return 0
