"""``bffgate probe``: its arguments and exit codes (0 healthy, 1 a check failed, 2 usage or
configuration error). Imports the probe itself only when it runs (the CLI starts fast)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bffgate.config import ConfigError

USAGE_ERROR = 2

DESCRIPTION = (
    "A synthetic login against the running gateway. Without an account: GET /bff/login at "
    "the public URL must redirect to the IdP with an S256 code_challenge, state, nonce and the "
    "registered redirect_uri, the IdP must accept that request (its login page, not an "
    "error), the token endpoint must authenticate the client (a made-up code gets "
    "invalid_grant, not invalid_client), and discovery, JWKS and the ID-token algorithms must "
    "fit the config. With --user and --password-file: also the IdP's login form, the "
    "callback, /bff/user, one proxied call and logout. Prints one JSON line with --json; exit "
    "0 healthy, 1 a check failed, 2 usage or configuration error.")


def add_probe_command(sub: Any, config_help: str, load: Callable[[str | None], Any]) -> None:
    """Register ``probe`` on the CLI's subparsers; ``load`` reads the settings (``--config``)."""
    p = sub.add_parser("probe", help="synthetic login check of the running gateway (for "
                       "monitoring: exit code, JSON line, Prometheus metrics)",
                       description=DESCRIPTION)
    p.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    p.add_argument("--url", help="the gateway as browsers reach it (default server.public_url)")
    p.add_argument("--direct-url", metavar="URL",
                   help="the gateway itself, past any proxy in front (e.g. its Service): its "
                        "login redirect is compared with the one at --url")
    p.add_argument("--user", help="a test account at the IdP: walk the whole login")
    p.add_argument("--password-file", metavar="FILE", help="the test account's password")
    p.add_argument("--path", help="the proxied call (default the first route's prefix)")
    p.add_argument("--textfile", metavar="PATH",
                   help="write Prometheus metrics there (node-exporter textfile collector; "
                        "atomic)")
    p.add_argument("--pushgateway", metavar="URL", help="push the metrics to this Pushgateway")
    p.add_argument("--json", action="store_true",
                   help="exactly one JSON line on stdout instead of one line per check")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds per HTTP request (default 10)")
    p.set_defaults(func=lambda args: cmd_probe(args, load))


def _usage(message: str, as_json: bool) -> int:
    """Exit 2 naming the problem; with --json the run's one JSON line says it too."""
    print(f"bffgate probe: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"probe": "bffgate", "ok": False, "checks": [
            {"name": "usage", "ok": False, "detail": message, "duration_ms": 0.0}],
            "duration_ms": 0.0}, separators=(",", ":")), flush=True)
    return USAGE_ERROR


def cmd_probe(args: argparse.Namespace, load: Callable[[str | None], Any]) -> int:
    as_json = bool(args.json)
    if bool(args.user) != bool(args.password_file):
        return _usage("--user and --password-file go together", as_json)
    if args.timeout <= 0:
        return _usage("--timeout must be positive", as_json)
    password = None
    if args.password_file:
        try:
            password = Path(args.password_file).read_text(encoding="utf-8").rstrip("\r\n")
        except (OSError, UnicodeDecodeError) as exc:
            return _usage(f"--password-file {args.password_file}: cannot read it "
                          f"({type(exc).__name__})", as_json)
        if not password:
            return _usage(f"--password-file {args.password_file} is empty", as_json)
    try:
        settings = load(args.config)
    except ConfigError as exc:
        return _usage(exc.messages[0] if len(exc.messages) == 1 else str(exc), as_json)
    from bffgate.probe.run import ProbeOptions, run_probe

    return run_probe(settings, ProbeOptions(
        url=args.url, direct_url=args.direct_url, user=args.user, password=password,
        path=args.path, textfile=args.textfile, pushgateway=args.pushgateway,
        as_json=args.json, timeout=args.timeout))
