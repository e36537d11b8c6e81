"""Dependencies shared by more than one endpoint, each narrow: what it holds is what is used.

Every endpoint declares its own (``LoginDeps`` in login.py, ``ProxyDeps`` in api.py, ...);
app.py builds them all and binds each to its endpoint. Nothing reaches through settings or
a service to the store.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bffgate.oidc.client import OidcClient
from bffgate.store.base import ReplayGuard, SessionRecords


class BackchannelStore(SessionRecords, ReplayGuard, Protocol):
    """The store as back-channel logout uses it: end sessions, refuse a replayed token."""


@dataclass(frozen=True)
class SessionEnding:
    """Ending a presented session (logout, re-login): its records and the IdP (revocation)."""

    store: SessionRecords
    oidc: OidcClient


@dataclass(frozen=True)
class BackchannelDeps:
    oidc: OidcClient
    store: BackchannelStore
    issuer: str  # oidc.issuer: the replay guard's namespace for the token's jti
