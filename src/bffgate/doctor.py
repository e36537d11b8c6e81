"""``bffgate doctor``: live checks of what the configuration points at."""

from __future__ import annotations

import email.utils
import time

import httpx

from bffgate.app import build_store
from bffgate.config import Settings
from bffgate.errors import GatewayError
from bffgate.oidc.discovery import ProviderMetadata, fetch_json, fetch_json_response
from bffgate.oidc.errors import OidcError

MAX_SKEW = 30.0


async def run_doctor(settings: Settings) -> int:
    failures = 0

    def report(ok: bool, what: str, detail: str = "") -> None:
        nonlocal failures
        failures += 0 if ok else 1
        print(f"[{'ok' if ok else 'FAIL'}] {what}{': ' + detail if detail else ''}")

    store = build_store(settings)
    try:
        await store.ping()
        report(True, f"session store ({settings.session.store})")
    except GatewayError as exc:
        report(False, "session store", exc.reason)
    finally:
        await store.close()

    issuer = settings.oidc.issuer
    async with httpx.AsyncClient(timeout=10, trust_env=False) as http:
        try:
            doc = await fetch_json(http, issuer.rstrip("/") + "/.well-known/openid-configuration")
            meta = ProviderMetadata.parse(doc, issuer)
            report(True, "IdP discovery", issuer)
            report(True, "PKCE S256 advertised")
            auth_ok = settings.oidc.client_auth in meta.auth_methods
            report(auth_ok, f"token endpoint auth method {settings.oidc.client_auth}",
                   "" if auth_ok else f"IdP supports {', '.join(meta.auth_methods)}")
            jwks, resp = await fetch_json_response(http, meta.jwks_uri)
            n = len(jwks.get("keys", []))
            report(n > 0, "JWKS", f"{n} key(s)")
            date = resp.headers.get("date")
            if date:
                skew = abs(email.utils.parsedate_to_datetime(date).timestamp() - time.time())
                report(skew <= MAX_SKEW, "clock skew vs IdP", f"{skew:.1f}s")
        except (OidcError, httpx.HTTPError) as exc:
            report(False, "IdP discovery", str(exc))
    print("all checks passed" if failures == 0 else f"{failures} check(s) failed")
    return 0 if failures == 0 else 1
