"""One probe run: the IdP checks, the login redirect through whatever stands in front of
the gateway, the IdP's answer to it and, with a test account, the signed-in walk; then the
metrics (textfile, Pushgateway) and the report on stdout."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass

from bffgate.app import Gateway
from bffgate.clock import SystemClock
from bffgate.config import Settings
from bffgate.oidc.discovery import ProviderMetadata
from bffgate.probe.account import Account, sign_in, signed_in_walk
from bffgate.probe.browser import Browser
from bffgate.probe.idp import idp_checks
from bffgate.probe.metrics import probe_registry, push, write_textfile
from bffgate.probe.redirect import check_login_redirect, follow_to_idp
from bffgate.probe.result import Findings
from bffgate.store.memory import MemoryStore


@dataclass(frozen=True, repr=False)
class ProbeOptions:
    url: str | None = None
    direct_url: str | None = None
    user: str | None = None
    password: str | None = None
    path: str | None = None
    textfile: str | None = None
    pushgateway: str | None = None
    as_json: bool = False
    timeout: float = 10.0

    def __repr__(self) -> str:  # never the password
        return f"ProbeOptions(url={self.url!r}, user={self.user!r})"


async def probe(settings: Settings, options: ProbeOptions) -> Findings:
    findings = Findings()
    o = settings.oidc
    findings.secret(o.client_secret.get(), o.private_key.get(),
                    *(k.get() for k in (*settings.cookie.secret_keys, *settings.cookie.verify_keys)))
    # The IdP checks need no session store: an in-memory one keeps Redis out of the probe.
    gw = Gateway(settings, store=MemoryStore(SystemClock()))
    try:
        meta = await idp_checks(settings, gw, findings)
    finally:
        await gw.stop()
    base = (options.url or settings.server.public_url).rstrip("/")
    async with Browser(options.timeout) as browser:
        try:
            await _walk(browser, base, settings, meta, findings, options)
        finally:
            findings.secret(*browser.cookie_values())
    return findings


async def _walk(browser: Browser, base: str, settings: Settings,
                meta: ProviderMetadata | None, findings: Findings,
                options: ProbeOptions) -> None:
    location = await check_login_redirect(browser, base, settings, meta, findings,
                                          options.direct_url)
    if location is None:
        return
    reached = await follow_to_idp(browser, location, settings, findings)
    if reached is None or options.user is None or options.password is None:
        return
    url, page = reached
    if url.startswith(settings.redirect_uri):
        callback: str | None = url
    else:
        callback = await sign_in(browser, url, page, Account(options.user, options.password),
                                 settings, findings)
    if callback is not None:
        await signed_in_walk(browser, base, callback, settings, findings, options.path)


def run_probe(settings: Settings, options: ProbeOptions) -> int:
    """Run, write the metrics, print the report; 0 healthy, 1 a check failed."""
    from bffgate.logs import configure_logging

    configure_logging(settings.log.level, settings.log.format, stream=sys.stderr)
    findings = asyncio.run(probe(settings, options))
    findings.secret(options.password)
    duration = time.perf_counter() - findings.started
    registry = probe_registry(findings, duration)
    if options.textfile:
        since = time.perf_counter()
        try:
            write_textfile(options.textfile, registry)
        except OSError as exc:
            findings.add("textfile", False, f"cannot write {options.textfile}: "
                         f"{exc.strerror or type(exc).__name__}", since)
    if options.pushgateway:
        since = time.perf_counter()
        try:
            push(options.pushgateway, registry, options.timeout)
        except OSError as exc:
            findings.add("pushgateway", False, f"cannot push to {options.pushgateway}: "
                         f"{exc}", since)
    if options.as_json:
        print(findings.json_line(), flush=True)
    else:
        print("\n".join(findings.text_lines()), flush=True)
    return 0 if findings.healthy else 1
