"""Fixtures for the demo tests: the development IdP driven in-process with a fake clock."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette

from bffgate.demo.devidp import create_dev_idp

ISSUER = "http://idp.test"
CLIENT_ID = "bffgate-demo"
CLIENT_SECRET = "demo-secret"
REDIRECT_URI = "http://gateway.test/bff/callback"
POST_LOGOUT_URI = "http://gateway.test/"
# RFC 7636 Appendix B
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


class Clock:
    """A settable clock."""

    def __init__(self) -> None:
        self.t = 1_700_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def basic_auth(client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET) -> dict[str, str]:
    raw = f"{client_id}:{secret}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def authorize_params(**overrides: str | None) -> dict[str, str]:
    params: dict[str, str | None] = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "openid profile email offline_access",
        "state": "st-123",
        "nonce": "n-456",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


@dataclass
class Flow:
    """Drives the dev IdP like a browser plus a confidential client; carries the test constants."""

    client: httpx.AsyncClient
    clock: Clock
    app: Starlette

    issuer = ISSUER
    client_id = CLIENT_ID
    client_secret = CLIENT_SECRET
    redirect_uri = REDIRECT_URI
    post_logout_uri = POST_LOGOUT_URI
    verifier = VERIFIER
    challenge = CHALLENGE
    basic_auth = staticmethod(basic_auth)
    query = staticmethod(query)
    authorize_params = staticmethod(authorize_params)

    async def login(self, username: str = "alice", **overrides: str | None) -> str:
        params = authorize_params(**overrides)
        form = await self.client.get("/authorize", params=params)
        assert form.status_code == 200, form.text
        posted = await self.client.post(
            "/authorize", data={**params, "username": username, "password": "ignored"}
        )
        assert posted.status_code == 302, posted.text
        location = posted.headers["location"]
        assert location.startswith(REDIRECT_URI + "?")
        return query(location)["code"]

    async def exchange(self, code: str, verifier: str = VERIFIER) -> httpx.Response:
        return await self.client.post(
            "/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": verifier,
            },
            headers=basic_auth(),
        )

    async def tokens(self, username: str = "alice") -> dict[str, Any]:
        response = await self.exchange(await self.login(username))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def refresh(self, refresh_token: str) -> httpx.Response:
        return await self.client.post(
            "/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            headers=basic_auth(),
        )

    async def introspect(self, token: str) -> dict[str, Any]:
        response = await self.client.post(
            "/introspect", data={"token": token}, headers=basic_auth()
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def idp_app(clock: Clock) -> Starlette:
    return create_dev_idp(
        issuer=ISSUER,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[POST_LOGOUT_URI],
        now=clock,
    )


@pytest.fixture
async def idp(idp_app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=idp_app), base_url=ISSUER
    ) as client:
        yield client


@pytest.fixture
def flow(idp: httpx.AsyncClient, clock: Clock, idp_app: Starlette) -> Flow:
    return Flow(idp, clock, idp_app)
