"""The bffgate command: serve, demo, check-config, doctor, probe, sessions."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from bffgate import __version__
from bffgate.config import (
    DEFAULT_CONFIG_PATH,
    ENV_PREFIX,
    ConfigError,
    ConfigFileMissing,
    Settings,
    env_override_name,
    load_settings,
)
from bffgate.listeners import ListenerUnavailable, check_listeners
from bffgate.probe import add_probe_command
from bffgate.sessions_cli import add_sessions_parser

DESCRIPTION = ("A Backend-for-Frontend OAuth session gateway. Start with `bffgate demo`; "
               "`bffgate COMMAND --help` tells more.")
CONFIG_HELP = (f"TOML file (default {DEFAULT_CONFIG_PATH}, or $BFFGATE_CONFIG); "
               "before or after the command")
DEMO_PORTS = {0: "gateway", 1: "identity provider", 2: "demo API", 3: "demo page",
              10: "admin listener"}


def _environment_only(environ: Mapping[str, str]) -> bool:
    """A container may configure everything with BFFGATE_<SECTION>__<KEY> variables."""
    return any(k.startswith(ENV_PREFIX) and "__" in k[len(ENV_PREFIX):] for k in environ)


def _load(path: str | None) -> Settings:
    chosen = path or os.environ.get("BFFGATE_CONFIG")
    if chosen is None:
        if Path(DEFAULT_CONFIG_PATH).exists():
            chosen = DEFAULT_CONFIG_PATH
        elif _environment_only(os.environ):
            return load_settings(None)
        else:
            raise ConfigFileMissing(DEFAULT_CONFIG_PATH)
    return load_settings(chosen)


def _config_failure(exc: ConfigError) -> str:
    if isinstance(exc, ConfigFileMissing):
        return f"bffgate: {exc.messages[0]}"
    return f"bffgate: {exc}"


def _load_or_exit(path: str | None) -> Settings:
    try:
        return _load(path)
    except ConfigError as exc:
        print(_config_failure(exc), file=sys.stderr)
        raise SystemExit(1) from None


def _serve_or_exit(listeners: Mapping[str, str], hint: Callable[[str], str],
                   run: Callable[[], int]) -> int:
    """Run ``run`` once every listener can be bound; a busy port is one line and exit 1.

    ``listeners`` maps each listen address to what it is (``server.listen``); ``hint``
    says, for an address, how to pick another."""
    try:
        check_listeners(listeners)
        return run()
    except ListenerUnavailable as exc:
        what = listeners.get(exc.listen, "a listener")
        print(f"bffgate: {exc.problem} ({what} {exc.listen}); {hint(exc.listen)}",
              file=sys.stderr)
        return 1


def cmd_check_config(args: argparse.Namespace) -> int:
    try:
        settings = _load(args.config)
    except ConfigError as exc:
        print(_config_failure(exc), file=sys.stderr)
        return 1
    print(f"configuration OK: {len(settings.routes)} route(s), store={settings.session.store}, "
          f"issuer={settings.oidc.issuer}")
    return 0


def workers_value(text: str) -> int | str:
    """``--workers N|auto`` (argparse type)."""
    if text.strip().lower() == "auto":
        return "auto"
    if text.strip().isascii() and text.strip().isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f'expected a number of worker processes (1 or more) or '
                                     f'"auto" (one per core), got {text!r}')


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _load_or_exit(args.config)
    from bffgate.logs import configure_logging
    from bffgate.serve import listener_names, serve
    from bffgate.workers import worker_count

    configure_logging(settings.log.level, settings.log.format,
                      audit_format=settings.log.audit_format,
                      flush_interval=settings.log.flush_interval)
    workers = worker_count(args.workers if args.workers is not None else settings.server.workers)
    keys = {"public": "server.listen", "admin": "server.admin_listen"}
    listeners = {listen: keys[name] for listen, name in listener_names(settings).items()}

    def hint(listen: str) -> str:
        key = listeners[listen]
        return f"pick another in {key} (or {env_override_name(*key.split('.'))})"

    return _serve_or_exit(listeners, hint, lambda: serve(settings, workers))


def cmd_demo(args: argparse.Namespace) -> int:
    if args.config is not None:
        print("bffgate demo: takes no --config (it makes its own throwaway settings)",
              file=sys.stderr)
        return 2
    if args.idp_only:
        from bffgate.demo.idponly import DEFAULT_IDP_PORT, run_idp_only

        idp_port = DEFAULT_IDP_PORT if args.port is None else args.port
        return _serve_or_exit(
            {f"127.0.0.1:{idp_port}": "the dev identity provider"},
            lambda _: "pick another with --port (the issuer in the printed config follows it)",
            lambda: run_idp_only(args.port, args.redirect_uri, args.upstream,
                                 args.write_config))
    if args.redirect_uri or args.upstream or args.write_config:
        print("bffgate demo: --redirect-uri, --upstream and --write-config go with --idp-only",
              file=sys.stderr)
        return 2
    from bffgate.demo.runner import run_demo

    port = 8080 if args.port is None else args.port
    used = ", ".join(str(port + offset) for offset in DEMO_PORTS)
    return _serve_or_exit(
        {f"127.0.0.1:{port + offset}": f"the demo's {what}" for offset, what in DEMO_PORTS.items()},
        lambda _: f"pick another with --port (the demo listens on {used})",
        lambda: run_demo(port=port))


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = _load_or_exit(args.config)
    from bffgate.doctor import run_doctor

    return asyncio.run(run_doctor(settings))


def cmd_sessions(args: argparse.Namespace) -> int:
    from bffgate.sessions_cli import cmd_sessions as run

    return run(args, _load)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bffgate", description=DESCRIPTION)
    p.add_argument("--version", action="version", version=f"bffgate {__version__}")
    # --config is accepted before the command and after it (and after `sessions list`);
    # the later ones default to SUPPRESS so they never reset an earlier value to None.
    p.add_argument("--config", default=None, help=CONFIG_HELP)
    sub = p.add_subparsers(dest="command", required=True)
    for name, fn, helptext in (
        ("serve", cmd_serve, "run the gateway"),
        ("check-config", cmd_check_config, "validate the configuration; exit 1 listing errors"),
        ("doctor", cmd_doctor, "live checks: Redis, IdP discovery/JWKS, S256, clock skew"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("--config", default=argparse.SUPPRESS, help=CONFIG_HELP)
        sp.set_defaults(func=fn)
    add_probe_command(sub, CONFIG_HELP, _load)
    sub.choices["serve"].add_argument(
        "--workers", type=workers_value, default=None, metavar="N|auto",
        help="worker processes sharing the listeners (default: server.workers, 1); "
             "auto: one per core")
    demo = sub.add_parser(
        "demo", help="gateway + dev IdP + demo API and page (NOT production)",
        description="A first look: gateway, built-in dev identity provider, demo API and demo "
                    "page, in-memory sessions, random keys; NOT for production. It listens on "
                    "127.0.0.1 at PORT (gateway, open http://localhost:PORT/), PORT+1 (identity "
                    "provider), PORT+2 (demo API), PORT+3 (demo page) and PORT+10 (admin: "
                    "/metrics, /healthz, /readyz); PORT is 8080 unless --port says otherwise.")
    demo.add_argument("--port", type=int, default=None,
                      help="the gateway's port (default 8080); the demo also takes PORT+1, PORT+2, "
                           "PORT+3 and PORT+10. With --idp-only: the IdP's port (default 9400)")
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
    add_sessions_parser(sub, CONFIG_HELP, cmd_sessions)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
