"""The ``bffgate`` command: serve, demo, check-config, doctor, sessions."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import Any

from bffgate import __version__
from bffgate.config import DEFAULT_CONFIG_PATH, Settings, load_settings
from bffgate.errors import ConfigError


def _load(path: str | None) -> Settings:
    chosen = path or os.environ.get("BFFGATE_CONFIG") or DEFAULT_CONFIG_PATH
    if path is None and not Path(chosen).exists():
        return load_settings(None)  # environment only
    return load_settings(chosen)


def _load_or_exit(path: str | None) -> Settings:
    try:
        return _load(path)
    except ConfigError as exc:
        print(f"bffgate: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = _load(args.config)
    except ConfigError as exc:
        print(f"bffgate: {exc}", file=sys.stderr)
        return 1
    print(f"configuration OK: {len(settings.routes)} route(s), store={settings.session.store}, "
          f"issuer={settings.oidc.issuer}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load_or_exit(args.config)
    from bffgate.app import Gateway
    from bffgate.logs import configure_logging, get_logger
    from bffgate.server import run, serve_all

    configure_logging(settings.log.level, settings.log.format)
    log = get_logger()

    async def main() -> None:
        gw = Gateway(settings)
        await gw.start()
        apps: list[tuple[Any, str]] = [(gw.public, settings.server.listen)]
        if settings.server.admin_listen:
            apps.append((gw.admin, settings.server.admin_listen))
        try:
            await serve_all(apps, on_started=lambda: log.info(
                "gateway.started", listen=settings.server.listen,
                admin_listen=settings.server.admin_listen, public_url=settings.server.public_url,
                routes=len(settings.routes), store=settings.session.store,
                version=__version__))
        finally:
            await gw.stop()
            log.info("gateway.stopped")

    run(main())
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if args.idp_only:
        from bffgate.demo.idponly import run_idp_only

        return run_idp_only(args.port, args.redirect_uri, args.upstream, args.write_config)
    if args.redirect_uri or args.upstream or args.write_config:
        print("bffgate demo: --redirect-uri, --upstream and --write-config go with --idp-only",
              file=sys.stderr)
        return 2
    from bffgate.demo.runner import run_demo

    return run_demo(port=8080 if args.port is None else args.port)


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = _load_or_exit(args.config)
    from bffgate.doctor import run_doctor

    return asyncio.run(run_doctor(settings))


def cmd_sessions(args: argparse.Namespace) -> int:
    settings = _load_or_exit(args.config)
    from bffgate.app import build_store
    from bffgate.logs import configure_logging
    from bffgate.session.service import revoke_sessions

    configure_logging(settings.log.level, settings.log.format, stream=sys.stderr)

    async def main() -> int:
        store = build_store(settings)
        try:
            if args.action == "list":
                for key in await store.keys_for_sub(args.sub):
                    print(key)
                return 0
            n = await revoke_sessions(store, key=args.id, sub=args.sub, reason="cli")
            print(f"revoked {n} session(s)")
            return 0
        finally:
            await store.close()

    return asyncio.run(main())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bffgate", description=__doc__)
    p.add_argument("--version", action="version", version=f"bffgate {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, helptext in (
        ("serve", cmd_serve, "run the gateway"),
        ("check-config", cmd_check_config, "validate the configuration; exit 1 listing errors"),
        ("doctor", cmd_doctor, "live checks: Redis, IdP discovery/JWKS, S256, clock skew"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--config", default=None,
                        help=f"TOML file (default {DEFAULT_CONFIG_PATH} or $BFFGATE_CONFIG)")
        sp.set_defaults(func=fn)
    demo = sub.add_parser("demo", help="gateway + dev IdP + demo API and page (NOT production)")
    demo.add_argument("--port", type=int, default=None,
                      help="gateway port (default 8080; the demo also uses the next three ports "
                           "and port+10); with --idp-only the IdP's port (default 9400)")
    demo.add_argument("--idp-only", action="store_true",
                      help="run only the dev IdP and print a config for `bffgate serve` against it")
    demo.add_argument("--redirect-uri", action="append", metavar="URI",
                      help="with --idp-only: the gateway's callback to register (repeatable or a "
                           "comma list; default http://localhost:8080/bff/callback)")
    demo.add_argument("--upstream", metavar="URL",
                      help="with --idp-only: the API the config's /api route forwards to "
                           "(default http://127.0.0.1:8081)")
    demo.add_argument("--write-config", metavar="FILE",
                      help="with --idp-only: write the config to FILE instead of stdout")
    demo.set_defaults(func=cmd_demo)
    sess = sub.add_parser("sessions", help="list or revoke sessions")
    sess.add_argument("--config", default=None)
    ssub = sess.add_subparsers(dest="action", required=True)
    ls = ssub.add_parser("list")
    ls.add_argument("--sub", required=True)
    rv = ssub.add_parser("revoke")
    g = rv.add_mutually_exclusive_group(required=True)
    g.add_argument("--id", help="session key (as listed)")
    g.add_argument("--sub")
    sess.set_defaults(func=cmd_sessions)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
