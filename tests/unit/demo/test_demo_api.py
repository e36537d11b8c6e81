"""The demo API verifies the bearer token against the dev IdP's JWKS and echoes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import ECKey

from bffgate.demo.api import create_demo_api

if TYPE_CHECKING:
    from conftest import Flow

API = "http://api.test"


@pytest.fixture
async def api(flow: Flow) -> AsyncIterator[httpx.AsyncClient]:
    idp_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=flow.app))
    app = create_demo_api(
        f"{flow.issuer}/jwks", flow.issuer, http_client=idp_client, now=flow.clock
    )
    async with (
        idp_client,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as client,
    ):
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_hello_with_a_valid_token(flow: Flow, api: httpx.AsyncClient) -> None:
    tokens = await flow.tokens()
    response = await api.get(
        "/api/hello", headers={**bearer(tokens["access_token"]), "X-Request-Id": "r-1"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"] == "Hello Alice"
    assert body["sub"] == "alice"
    assert body["token_seen"] is True
    assert body["method"] == "GET"
    assert body["path"] == "/api/hello"
    assert body["headers"]["x-request-id"] == "r-1"
    assert "authorization" not in body["headers"]
    assert "cookie" not in body["headers"]


async def test_the_report_shows_a_masked_bearer_never_the_token(
    flow: Flow, api: httpx.AsyncClient
) -> None:
    token = (await flow.tokens())["access_token"]
    response = await api.get(
        "/api/hello",
        headers={**bearer(token), "X-Forwarded-For": "10.1.2.3", "X-Forwarded-Proto": "https"},
    )
    assert response.status_code == 200, response.text
    received = response.json()["received"]
    assert received["authorization"] == {"scheme": "Bearer", "start": token[:6],
                                         "length": len(token)}
    assert received["cookie"] is False and received["x_csrf"] is False
    assert received["x_forwarded_for"] == "10.1.2.3"
    assert received["x_forwarded_proto"] == "https"
    assert token not in response.text
    assert token[6:26] not in response.text
    assert token.split(".")[2] not in response.text
    assert response.json()["token_check"] == {"alg": "ES256", "iss": flow.issuer}


async def test_the_report_says_when_a_cookie_or_x_csrf_arrived(
    flow: Flow, api: httpx.AsyncClient
) -> None:
    token = (await flow.tokens())["access_token"]
    response = await api.get(
        "/api/hello", headers={**bearer(token), "Cookie": "a=b", "X-CSRF": "1"}
    )
    received = response.json()["received"]
    assert received["cookie"] is True and received["x_csrf"] is True


async def test_a_cookie_that_reaches_the_api_is_reported_but_not_echoed(
    flow: Flow, api: httpx.AsyncClient
) -> None:
    tokens = await flow.tokens()
    response = await api.get(
        "/api/hello",
        headers={**bearer(tokens["access_token"]), "Cookie": "__Host-bffgate=secret-value"},
    )
    assert response.status_code == 200
    assert "secret-value" not in response.text
    assert "cookie" in response.json()["headers"]


async def test_echo_returns_the_body_and_the_sub(flow: Flow, api: httpx.AsyncClient) -> None:
    tokens = await flow.tokens()
    response = await api.post(
        "/api/echo", json={"n": 1, "items": ["a"]}, headers=bearer(tokens["access_token"])
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["echo"] == {"n": 1, "items": ["a"]}
    assert body["sub"] == "alice"
    assert body["method"] == "POST"
    bad = await api.post("/api/echo", content=b"{not json", headers=bearer(tokens["access_token"]))
    assert bad.status_code == 400


async def test_missing_token_is_401(api: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Basic Zm9vOmJhcg=="}, {"Authorization": "Bearer "}):
        response = await api.get("/api/hello", headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_forged_tokens_are_401(flow: Flow, api: httpx.AsyncClient) -> None:
    tokens = await flow.tokens()
    real = jwt.decode(
        tokens["access_token"],
        ECKey.import_key((await flow.client.get("/jwks")).json()["keys"][0]),
        algorithms=["ES256"],
    )
    forger = ECKey.generate_key("P-256", private=True)
    same_kid = jwt.encode(real.header, real.claims, forger, algorithms=["ES256"])
    unknown_kid = jwt.encode(
        {**real.header, "kid": "other"}, real.claims, forger, algorithms=["ES256"]
    )
    tampered = tokens["access_token"][:-6] + "AAAAAA"
    for token in (same_kid, unknown_kid, tampered, "garbage", tokens["id_token"]):
        response = await api.get("/api/hello", headers=bearer(token))
        assert response.status_code == 401, token
        assert response.json()["error"] == "invalid_token"


async def test_wrong_issuer_is_401(flow: Flow) -> None:
    tokens = await flow.tokens()
    idp_client = httpx.AsyncClient(transport=httpx.ASGITransport(app=flow.app))
    wrong_issuer = create_demo_api(
        f"{flow.issuer}/jwks", "http://other-idp.test", http_client=idp_client, now=flow.clock
    )
    async with (
        idp_client,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=wrong_issuer), base_url=API) as client,
    ):
        response = await client.get("/api/hello", headers=bearer(tokens["access_token"]))
        assert response.status_code == 401


async def test_expired_token_is_401(flow: Flow, api: httpx.AsyncClient) -> None:
    tokens = await flow.tokens()
    flow.clock.advance(300 + 31)
    response = await api.get("/api/hello", headers=bearer(tokens["access_token"]))
    assert response.status_code == 401


async def test_jwks_is_fetched_once_and_cached(flow: Flow) -> None:
    fetches: list[str] = []

    async def count(request: httpx.Request) -> None:
        fetches.append(str(request.url))

    idp_client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=flow.app), event_hooks={"request": [count]}
    )
    app = create_demo_api(
        f"{flow.issuer}/jwks", flow.issuer, http_client=idp_client, now=flow.clock
    )
    tokens = await flow.tokens()
    async with (
        idp_client,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as client,
    ):
        for _ in range(3):
            response = await client.get("/api/hello", headers=bearer(tokens["access_token"]))
            assert response.status_code == 200
    assert fetches == [f"{flow.issuer}/jwks"]


async def test_unreachable_jwks_is_503(flow: Flow) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    idp_client = httpx.AsyncClient(transport=httpx.MockTransport(refuse))
    app = create_demo_api(f"{flow.issuer}/jwks", flow.issuer, http_client=idp_client)
    tokens = await flow.tokens()
    async with (
        idp_client,
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=API) as client,
    ):
        response = await client.get("/api/hello", headers=bearer(tokens["access_token"]))
    assert response.status_code == 503
