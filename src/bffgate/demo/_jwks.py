"""A small JWKS cache for the demo API: fetched with httpx, refetched on an unknown kid."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet


class JwksUnavailableError(Exception):
    """The key set could not be fetched or parsed."""


class JwksCache:
    """Keeps the last good key set; refetches for an unknown kid at most every ``min_interval``."""

    def __init__(
        self,
        url: str,
        client: Callable[[], httpx.AsyncClient],
        now: Callable[[], float],
        min_interval: float = 10.0,
    ) -> None:
        self._url = url
        self._client = client
        self._now = now
        self._min_interval = min_interval
        self._keys: KeySet | None = None
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key_set(self, kid: str | None) -> KeySet:
        """The cached key set, refreshed first if it is missing or lacks ``kid``."""
        async with self._lock:
            stale = self._now() - self._fetched_at >= self._min_interval
            if self._keys is None or (stale and not self._has(self._keys, kid)):
                await self._fetch()
            if self._keys is None:
                raise JwksUnavailableError(self._url)
            return self._keys

    @staticmethod
    def _has(keys: KeySet, kid: str | None) -> bool:
        return kid is None or any(key.kid == kid for key in keys.keys)

    async def _fetch(self) -> None:
        self._fetched_at = self._now()
        try:
            response = await self._client().get(self._url, timeout=5.0)
            response.raise_for_status()
            self._keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError) as exc:
            if self._keys is None:
                raise JwksUnavailableError(self._url) from exc
