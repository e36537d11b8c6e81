"""The probe's IdP checks, run without a browser: doctor's discovery, client authentication
(a made-up code must get ``invalid_grant``), redirect URI and JWKS checks, plus whether the
IdP signs ID tokens with an algorithm ``oidc.id_token_algs`` accepts and publishes a key
for it."""

from __future__ import annotations

import time

from bffgate.app import Gateway
from bffgate.config import Settings
from bffgate.doctor.checks import check_client, check_discovery, check_jwks
from bffgate.doctor.redirect_uri import check_redirect_uri
from bffgate.doctor.report import cause
from bffgate.oidc.discovery import ProviderMetadata, fetch_json_response
from bffgate.oidc.errors import OidcError
from bffgate.probe.result import DoctorFindings, Findings

# the JWK key type each family of signing algorithm needs
_KTY = {"RS": "RSA", "PS": "RSA", "ES": "EC", "Ed": "OKP"}


async def idp_checks(settings: Settings, gw: Gateway,
                     findings: Findings) -> ProviderMetadata | None:
    """Run the checks; the provider metadata when discovery worked (the login walk needs
    the authorization endpoint), else None."""
    report = DoctorFindings(findings)
    meta = await check_discovery(settings, gw, report)
    if meta is None:
        return None
    report.begin()
    client_ok = await check_client(settings, gw, meta, report)
    report.begin()
    await check_redirect_uri(settings, gw, meta, report, use_par=client_ok)
    report.begin()
    await check_jwks(gw, meta, report)
    await _check_id_token_algs(settings, gw, meta, findings)
    return meta


async def _check_id_token_algs(settings: Settings, gw: Gateway, meta: ProviderMetadata,
                               findings: Findings) -> None:
    """The IdP's id_token_signing_alg_values_supported must meet oidc.id_token_algs, and the
    JWKS must hold a signing key of a type that fits one of the common algorithms."""
    since = time.perf_counter()
    accepted = settings.oidc.id_token_algs
    try:
        doc, _ = await fetch_json_response(
            gw.idp_http, settings.oidc.issuer.rstrip("/") + "/.well-known/openid-configuration")
        jwks, _ = await fetch_json_response(gw.idp_http, meta.jwks_uri)
    except OidcError as exc:
        findings.add("id_token_algs", False, f"cannot read the IdP's metadata: {cause(exc)}",
                     since)
        return
    offered = [a for a in doc.get("id_token_signing_alg_values_supported") or ["RS256"]
               if isinstance(a, str)]
    common = [a for a in offered if a in accepted]
    if not common:
        findings.add("id_token_algs", False,
                     f"the IdP signs ID tokens with {', '.join(offered)} "
                     "(id_token_signing_alg_values_supported), oidc.id_token_algs accepts "
                     f"{', '.join(accepted)}; add the IdP's algorithm to oidc.id_token_algs",
                     since)
        return
    keys = [k for k in jwks.get("keys", []) if isinstance(k, dict) and k.get("use", "sig") == "sig"]
    usable = [a for a in common if any(
        k.get("kty") == _KTY.get(a[:2]) and k.get("alg", a) == a for k in keys)]
    if not usable:
        findings.add("id_token_algs", False,
                     f"no key in the IdP's JWKS ({meta.jwks_uri}) fits {', '.join(common)}, "
                     "the algorithms both sides accept; the IdP must publish its ID-token "
                     "signing key", since)
        return
    findings.add("id_token_algs", True,
                 f"{', '.join(usable)} (offered by the IdP, accepted by oidc.id_token_algs, "
                 "a key for it in the JWKS)", since)
