"""Provider metadata (OIDC discovery) and the JWKS, cached with expiry and kid-miss refetch."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bffgate.clock import Clock
from bffgate.oidc.errors import ProviderMisconfigured, ProviderUnavailable

_MAX_DOC = 512 * 1024
JWKS_REFETCH_MIN_INTERVAL = 10.0  # seconds between kid-miss refetches (DoS guard)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None
    revocation_endpoint: str | None
    introspection_endpoint: str | None
    par_endpoint: str | None
    iss_parameter_supported: bool
    require_par: bool
    auth_methods: tuple[str, ...]
    # token_endpoint_auth_signing_alg_values_supported as listed (private_key_jwt picks
    # from it; entries are checked there); empty: the IdP sets no limit.
    auth_signing_algs: tuple[object, ...]
    # grant_types_supported; absent means RFC 8414's default (code and implicit only)
    grant_types: tuple[str, ...] = ("authorization_code", "implicit")
    # dpop_signing_alg_values_supported (RFC 9449 5.1); empty: the IdP announces no DPoP
    dpop_algs: tuple[str, ...] = ()

    @classmethod
    def parse(cls, doc: dict[str, Any], expected_issuer: str) -> ProviderMetadata:
        if doc.get("issuer") != expected_issuer:
            # Exact string comparison, no normalisation (OIDC Discovery 4.3, RFC 9207 2.4).
            raise ProviderMisconfigured(
                f"discovery issuer {doc.get('issuer')!r} != configured {expected_issuer!r}")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(doc.get(key), str):
                raise ProviderMisconfigured(f"discovery document lacks {key}")
        methods = doc.get("code_challenge_methods_supported") or []
        if "S256" not in methods:
            raise ProviderMisconfigured("IdP does not advertise PKCE S256 "
                                        "(code_challenge_methods_supported)")
        return cls(
            issuer=doc["issuer"],
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc["jwks_uri"],
            end_session_endpoint=doc.get("end_session_endpoint"),
            revocation_endpoint=doc.get("revocation_endpoint"),
            introspection_endpoint=doc.get("introspection_endpoint"),
            par_endpoint=doc.get("pushed_authorization_request_endpoint"),
            iss_parameter_supported=doc.get("authorization_response_iss_parameter_supported")
            is True,
            require_par=doc.get("require_pushed_authorization_requests") is True,
            auth_methods=tuple(doc.get("token_endpoint_auth_methods_supported")
                               or ("client_secret_basic",)),
            auth_signing_algs=tuple(algs) if isinstance(
                algs := doc.get("token_endpoint_auth_signing_alg_values_supported"), list)
            else (),
            grant_types=tuple(g for g in grants if isinstance(g, str)) if isinstance(
                grants := doc.get("grant_types_supported"), list)
            else ("authorization_code", "implicit"),
            dpop_algs=tuple(a for a in dalgs if isinstance(a, str)) if isinstance(
                dalgs := doc.get("dpop_signing_alg_values_supported"), list) else (),
        )


async def fetch_json_response(http: httpx.AsyncClient,
                              url: str) -> tuple[dict[str, Any], httpx.Response]:
    """GET a JSON document from the IdP, with the response itself (for its headers, e.g.
    ``Date``); transport and 5xx failures are ProviderUnavailable."""
    try:
        resp = await http.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"GET {url}: {type(exc).__name__}") from exc
    if resp.status_code >= 500:
        raise ProviderUnavailable(f"GET {url}: HTTP {resp.status_code}")
    if resp.status_code != 200 or len(resp.content) > _MAX_DOC:
        raise ProviderMisconfigured(f"GET {url}: HTTP {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError as exc:
        raise ProviderMisconfigured(f"GET {url}: not JSON") from exc
    if not isinstance(doc, dict):
        raise ProviderMisconfigured(f"GET {url}: not a JSON object")
    return doc, resp


class Discovery:
    """Fetches and caches metadata (TTL) and the JWKS (TTL + refetch on an unknown kid)."""

    def __init__(self, http: httpx.AsyncClient, issuer: str, clock: Clock, ttl: int = 3600) -> None:
        self._http, self._issuer, self._clock, self._ttl = http, issuer, clock, ttl
        self._meta: ProviderMetadata | None = None
        self._meta_at = 0.0
        self._keys: KeySet | None = None
        self._keys_at = 0.0
        self._keys_tried_at = 0.0  # the last fetch attempt, failed or not (rate limit)
        self._lock = asyncio.Lock()

    async def metadata(self) -> ProviderMetadata:
        now = self._clock.now()
        if self._meta and now - self._meta_at < self._ttl:
            return self._meta
        async with self._lock:
            if self._meta and self._clock.now() - self._meta_at < self._ttl:
                return self._meta
            url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
            try:
                doc, _ = await fetch_json_response(self._http, url)
            except ProviderUnavailable:
                if self._meta:  # keep serving the last good metadata while the IdP is away
                    return self._meta
                raise
            self._meta = ProviderMetadata.parse(doc, self._issuer)
            self._meta_at = self._clock.now()
            return self._meta

    async def probe(self) -> None:
        """Fetch and check the discovery document now, past the cache (which stays as it
        is): for reporting whether the IdP answers. Raises ProviderUnavailable or
        ProviderMisconfigured."""
        url = self._issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc, _ = await fetch_json_response(self._http, url)
        ProviderMetadata.parse(doc, self._issuer)

    async def keys(self, kid: str | None = None) -> KeySet:
        """The JWKS; refetched when expired, or when ``kid`` is unknown (rate-limited)."""
        now = self._clock.now()
        fresh = self._keys is not None and now - self._keys_at < self._ttl
        known = self._keys is not None and (kid is None or _has_kid(self._keys, kid))
        may_refetch = now - self._keys_tried_at >= JWKS_REFETCH_MIN_INTERVAL
        if self._keys is not None and (not may_refetch or (fresh and known)):
            return self._keys  # (tried within the interval: the cached keys, even if stale)
        meta = await self.metadata()  # before the lock: metadata() takes it when expired
        async with self._lock:
            if self._keys is not None and self._keys_tried_at > now:
                return self._keys  # another task just refetched (or tried to)
            self._keys_tried_at = self._clock.now()
            try:
                doc, _ = await fetch_json_response(self._http, meta.jwks_uri)
            except ProviderUnavailable:
                if self._keys is not None:
                    return self._keys
                raise
            try:
                keys = KeySet.import_key_set(doc)  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError, KeyError) as exc:
                raise ProviderMisconfigured("JWKS could not be parsed") from exc
            self._keys, self._keys_at = keys, self._clock.now()
            return keys


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)
