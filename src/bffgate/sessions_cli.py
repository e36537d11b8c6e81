"""``bffgate sessions list|show|revoke``: the admin sessions API's view, from the shell.

It reads the store directly (the settings' Redis), as the admin API does: the same fields
(session/inventory.py), the same ids, and sessions end through ``end_sessions`` (audit
``session.revoked``, reason ``cli``, on stderr). Output: a table, or ``--json`` with the
admin API's bodies. Exit codes: 0 done (also "no sessions"), 1 configuration or store
failure, 2 usage, 3 no live session has that id (show, revoke ID).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from bffgate.config import ConfigError, Settings
from bffgate.errors import GatewayError

NOT_FOUND = 3
_COLUMNS = (("ID", "id"), ("CREATED", "created_at"), ("LAST SEEN", "last_seen_at"),
            ("IDLE EXPIRES", "idle_expires_at"), ("EXPIRES", "expires_at"),
            ("REFRESHED", "refresh_count"), ("CLIENT IP", "client_ip"),
            ("USER AGENT", "user_agent"))
_UA_WIDTH = 40


def _cell(doc: dict[str, Any], field: str) -> str:
    value = doc.get(field)
    if value is None:
        return "-"
    text = str(value)
    if field.endswith("_at"):
        text = text.replace("T", " ")[:19]  # to the second, in the table
    if field == "user_agent" and len(text) > _UA_WIDTH:
        text = text[:_UA_WIDTH - 1] + "…"
    return text


def table(docs: list[dict[str, Any]]) -> str:
    rows = [[title for title, _ in _COLUMNS]] + [[_cell(d, f) for _, f in _COLUMNS] for d in docs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def details(doc: dict[str, Any]) -> str:
    width = max(len(k) for k in doc)
    return "\n".join(f"{k.ljust(width)}  {'-' if v is None else v}" for k, v in doc.items())


def _emit(args: argparse.Namespace, doc: dict[str, Any], text: str) -> None:
    print(json.dumps(doc, indent=2) if args.json else text)


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    from bffgate.app import build_store
    from bffgate.clock import SystemClock
    from bffgate.session.ending import ById, BySub, end_sessions
    from bffgate.session.inventory import SessionInventory

    store = build_store(settings)
    inventory = SessionInventory(store, idle_timeout=settings.session.idle_timeout)
    now = SystemClock().now()
    try:
        if args.action == "list":
            docs = [v.to_json() for v in await inventory.of_sub(args.sub, now)]
            _emit(args, {"sessions": docs},
                  table(docs) if docs else f"no sessions for sub {args.sub}")
            return 0
        if args.action == "show" or args.id:
            found = await inventory.by_id(args.id, now)
            if found is None:
                print(f"bffgate sessions: no live session has the id {args.id}",
                      file=sys.stderr)
                return NOT_FOUND
            if args.action == "show":
                _emit(args, found.to_json(), details(found.to_json()))
                return 0
            n = await end_sessions(store, ById(found.key, found.facts.sub), reason="cli")
            _emit(args, {"revoked": n}, f"revoked {n} session(s)")
            return 0 if n else NOT_FOUND
        n = await end_sessions(store, BySub(args.sub), reason="cli")
        _emit(args, {"revoked": n}, f"revoked {n} session(s)" if n
              else f"no sessions for sub {args.sub}: nothing revoked")
        return 0
    finally:
        await store.close()


def cmd_sessions(args: argparse.Namespace, load: Callable[[str | None], Settings]) -> int:
    try:
        settings = load(args.config)
    except ConfigError as exc:
        print(f"bffgate: {exc}", file=sys.stderr)
        return 1
    if settings.session.store == "memory":
        print("bffgate sessions: session.store is memory: the sessions live inside the running "
              "gateway process; use its admin listener (/admin/sessions) instead",
              file=sys.stderr)
        return 1
    from bffgate.doctor import store_failure
    from bffgate.logs import configure_logging

    configure_logging(settings.log.level, settings.log.format, stream=sys.stderr,
                      audit_format=settings.log.audit_format)
    try:
        return asyncio.run(_run(settings, args))
    except GatewayError as exc:
        print(f"bffgate sessions: {store_failure(settings, exc)}", file=sys.stderr)
        return 1


def add_sessions_parser(sub: Any, config_help: str,
                        run: Callable[[argparse.Namespace], int]) -> None:
    """``bffgate sessions ...``; ``--config`` before or after each word, ``--json`` after
    the action."""
    sess = sub.add_parser(
        "sessions", help="list, show or revoke sessions (as the admin API)",
        description="List a user's sessions, show one, or end them, from the store the "
                    "configuration names. Exit codes: 0 done (also when there are none), "
                    "1 configuration or store failure, 2 usage, 3 no live session has that id.")
    sess.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
    actions = sess.add_subparsers(dest="action", required=True)

    def action(name: str, helptext: str) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = actions.add_parser(name, help=helptext)
        p.add_argument("--config", default=argparse.SUPPRESS, help=config_help)
        p.add_argument("--json", action="store_true", help="the admin API's JSON body")
        return p

    action("list", "a user's live sessions, oldest first").add_argument(
        "--sub", required=True, help="the user's subject")
    as_listed = ("the session's id, as listed (an older one that begins with "
                 "'-' goes after '--': show -- -8-XW...)")
    action("show", "one session").add_argument("id", help=as_listed)
    revoke = action("revoke", "end one session (ID) or all of a user's (--sub)")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", help=as_listed)
    which.add_argument("--sub", help="every session of this subject")
    sess.set_defaults(func=run, id=None, sub=None)
