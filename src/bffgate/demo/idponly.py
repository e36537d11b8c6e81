"""``bffgate demo --idp-only``: only the dev IdP, plus the config that runs ``serve`` against it."""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

from bffgate.demo.devconfig import (
    CLIENT_ID,
    DEFAULT_UPSTREAM,
    DevConfigError,
    check_config,
    gateway_for,
    origin_of,
    parse_redirect_uris,
    render_config,
    write_config,
)

DEFAULT_IDP_PORT = 9400  # the issuer config/dev.toml expects
READY = "dev identity provider is running"
BANNER = """
  ==================================================================
   bffgate dev identity provider -- DEVELOPMENT ONLY, NOT FOR PRODUCTION
   any user name signs in, no password, everything in memory
  ==================================================================
"""


def run_idp_only(port: int | None, redirect_uris: list[str] | None,
                 upstream: str | None = None, write_to: str | None = None) -> int:
    from bffgate.demo.devidp import create_dev_idp
    from bffgate.server import run, serve_all

    port = DEFAULT_IDP_PORT if port is None else port
    issuer = f"http://127.0.0.1:{port}"
    client_secret = secrets.token_urlsafe(24)
    try:
        uris = parse_redirect_uris(redirect_uris)
        config = render_config(issuer, client_secret, uris[0], upstream or DEFAULT_UPSTREAM)
        check_config(config)
        if write_to is not None:
            write_config(Path(write_to), config)
    except DevConfigError as exc:
        print(f"bffgate demo: {exc}", file=sys.stderr)
        return 2
    hint = ("Register it by restarting `bffgate demo --idp-only` with one more "
            "--redirect-uri (repeat the flag, or give a comma list).")
    idp = create_dev_idp(issuer, CLIENT_ID, client_secret, redirect_uris=uris,
                         post_logout_redirect_uris=[origin_of(u) + "/" for u in uris],
                         registration_hint=hint)
    print(BANNER, file=sys.stderr)
    if write_to is None:
        # The config alone on stdout (`> dev.toml` saves it); everything else on stderr.
        print(config, flush=True)
    target = write_to or "dev.toml"
    gateway = gateway_for(uris[0]).public_url

    def ready() -> None:
        saved = (f"  wrote the gateway config to {write_to}\n" if write_to else
                 f"  the gateway config went to stdout: save it as {target}"
                 " (or use --write-config FILE)\n")
        print(f"\n  {READY}: issuer {issuer}, client_id {CLIENT_ID}\n"
              f"  registered redirect URIs: {', '.join(uris)}\n{saved}"
              f"  then run:  bffgate serve --config {target}\n"
              f"  then your SPA, served through {gateway}, logs in at /bff/login\n"
              f"  (any user name, no password)\n"
              f"  Ctrl-C to stop.\n", file=sys.stderr, flush=True)

    run(serve_all([(idp, f"127.0.0.1:{port}")], on_started=ready))
    return 0
