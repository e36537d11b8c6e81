"""Unit tests for the OIDC client over httpx.MockTransport: client authentication encodings,
token-response classification, PAR, end-session URL. (The real IdP is in tests/e2e.)"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey

from bffgate.clock import FrozenClock
from bffgate.oidc.client import OidcClient, RelyingParty
from bffgate.oidc.discovery import Discovery
from bffgate.oidc.errors import GrantRejected, ProviderUnavailable, TokenRejected

ISSUER = "https://idp.example.com"
SIGNING_KEY = RSAKey.generate_key(2048, auto_kid=True)


class FakeIdP:
    """The IdP side: discovery plus a token endpoint whose answer the test chooses."""

    def __init__(self, token_status: int = 200, token_body: Any = None,
                 par: bool = False) -> None:
        self.requests: list[httpx.Request] = []
        self.token_status = token_status
        self.token_body = token_body if token_body is not None else {
            "access_token": "at", "token_type": "Bearer", "expires_in": 300,
            "refresh_token": "rt", "id_token": "it"}
        self.par = par

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            doc = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize",
                   "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/jwks",
                   "code_challenge_methods_supported": ["S256"],
                   "end_session_endpoint": f"{ISSUER}/logout",
                   "revocation_endpoint": f"{ISSUER}/revoke"}
            if self.par:
                doc["pushed_authorization_request_endpoint"] = f"{ISSUER}/par"
            return httpx.Response(200, json=doc)
        if path == "/par":
            return httpx.Response(201, json={"request_uri": "urn:par:1", "expires_in": 60})
        if path == "/token":
            body = self.token_body
            if isinstance(body, bytes):
                return httpx.Response(self.token_status, content=body)
            return httpx.Response(self.token_status, json=body)
        if path == "/revoke":
            return httpx.Response(200)
        return httpx.Response(404)

    def token_request(self) -> httpx.Request:
        return next(r for r in self.requests if r.url.path == "/token")


def make_client(idp: FakeIdP, auth: str = "client_secret_basic", secret: str = "s3cr3t",
                private_key: str = "", use_par: bool = False) -> OidcClient:
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp))
    clock = FrozenClock(1_700_000_000)
    rp = RelyingParty(issuer=ISSUER, client_id="bff", client_secret=secret, client_auth=auth,
                      private_key=private_key, redirect_uri="https://app.example.com/bff/callback",
                      scopes=("openid", "offline_access"), id_token_algs=("RS256",),
                      clock_skew=60, use_par=use_par, extra_auth_params={})
    return OidcClient(rp, http, Discovery(http, ISSUER, clock), clock)


async def test_client_secret_basic_sends_credentials_in_the_header_only() -> None:
    idp = FakeIdP()
    await make_client(idp).exchange_code("the-code", "v" * 43)
    req = idp.token_request()
    user, _, pw = base64.b64decode(req.headers["authorization"].split()[1]).decode().partition(":")
    assert (user, pw) == ("bff", "s3cr3t")
    form = parse_qs(req.content.decode())
    assert "client_secret" not in form
    assert form["grant_type"] == ["authorization_code"]
    assert form["code_verifier"] == ["v" * 43]
    assert form["redirect_uri"] == ["https://app.example.com/bff/callback"]


async def test_client_secret_post_sends_credentials_in_the_body_only() -> None:
    idp = FakeIdP()
    await make_client(idp, "client_secret_post").exchange_code("c", "v" * 43)
    req = idp.token_request()
    assert "authorization" not in req.headers
    form = parse_qs(req.content.decode())
    assert form["client_id"] == ["bff"] and form["client_secret"] == ["s3cr3t"]


async def test_public_client_none_sends_client_id_and_no_secret() -> None:
    idp = FakeIdP()
    await make_client(idp, "none", secret="").exchange_code("c", "v" * 43)
    req = idp.token_request()
    assert "authorization" not in req.headers
    form = parse_qs(req.content.decode())
    assert form["client_id"] == ["bff"] and "client_secret" not in form


async def test_private_key_jwt_sends_a_signed_assertion_for_the_token_endpoint() -> None:
    idp = FakeIdP()
    pem = SIGNING_KEY.as_pem(private=True).decode()
    await make_client(idp, "private_key_jwt", secret="", private_key=pem).exchange_code(
        "c", "v" * 43)
    form = parse_qs(idp.token_request().content.decode())
    assert form["client_assertion_type"] == [
        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"]
    claims = jwt.decode(form["client_assertion"][0], SIGNING_KEY).claims
    assert claims["iss"] == claims["sub"] == "bff"
    assert claims["aud"] == f"{ISSUER}/token"


@pytest.mark.parametrize(("status", "body", "error"), [
    pytest.param(400, {"error": "invalid_grant"}, GrantRejected, id="invalid-grant"),
    pytest.param(401, {"error": "invalid_client"}, GrantRejected, id="invalid-client"),
    pytest.param(200, {"error": "invalid_grant"}, GrantRejected, id="error-in-200"),
    pytest.param(400, {"error": "invalid_scope"}, TokenRejected, id="other-oauth-error"),
    pytest.param(503, {"error": "temporarily_unavailable"}, ProviderUnavailable, id="503"),
    pytest.param(500, b"<html>oops</html>", ProviderUnavailable, id="500-html"),
    pytest.param(400, {"error": "temporarily_unavailable"}, ProviderUnavailable,
                 id="temporarily-unavailable"),
    pytest.param(200, {"token_type": "Bearer"}, TokenRejected, id="no-access-token"),
    pytest.param(200, {"access_token": "x", "token_type": "mac"}, TokenRejected, id="mac"),
])
async def test_token_endpoint_answers_are_classified_by_type(status, body, error) -> None:
    idp = FakeIdP(status, body)
    with pytest.raises(error):
        await make_client(idp).refresh("rt", sub="alice")


async def test_transport_failure_is_provider_unavailable() -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(down))
    clock = FrozenClock()
    rp = make_client(FakeIdP()).rp
    client = OidcClient(rp, http, Discovery(http, ISSUER, clock), clock)
    with pytest.raises(ProviderUnavailable):
        await client.refresh("rt", sub="alice")


async def test_a_grant_is_the_request_client_post_would_send() -> None:
    """The POST is built once per grant from parts merged at start-up (the client's default
    headers and timeouts, the endpoint's parsed URL); on the wire it is what
    ``client.post()`` sends for the same form."""
    idp = FakeIdP()
    client = make_client(idp)
    await client.exchange_code("the-code", "v" * 43)
    await client.exchange_code("the-code", "v" * 43)  # the endpoint's cached URL, reused
    first, sent = [r for r in idp.requests if r.url.path == "/token"]
    http = httpx.AsyncClient(transport=httpx.MockTransport(idp), timeout=httpx.Timeout(7.0))
    await http.post(str(sent.url), content=sent.content,
                    headers={"Content-Type": "application/x-www-form-urlencoded",
                             "Accept": "application/json",
                             "Authorization": sent.headers["authorization"]})
    expected = idp.requests[-1]
    assert (sent.method, sent.url, sent.content) == (expected.method, expected.url,
                                                    expected.content)
    assert sorted(sent.headers.multi_items()) == sorted(expected.headers.multi_items())
    assert first.headers == sent.headers
    assert sent.extensions["timeout"] == httpx.Timeout(5.0).as_dict()  # make_client's client
    assert expected.extensions["timeout"] == httpx.Timeout(7.0).as_dict()


@pytest.mark.parametrize(("expires_in", "expected"), [
    pytest.param(300, 1_700_000_300.0, id="number"),
    pytest.param("300", 1_700_000_300.0, id="numeric-string"),
    pytest.param(None, None, id="absent-opaque"),
])
async def test_expiry_from_expires_in(expires_in, expected) -> None:
    body = {"access_token": "opaque", "token_type": "bearer"}
    if expires_in is not None:
        body["expires_in"] = expires_in
    t = await make_client(FakeIdP(200, body)).refresh("rt", sub="alice")
    assert t.expires_at == expected
    assert "opaque" not in repr(t)


async def test_expiry_falls_back_to_the_jwt_exp() -> None:
    at = jwt.encode({"alg": "RS256"}, {"exp": 1_700_000_999}, SIGNING_KEY)
    idp = FakeIdP(200, {"access_token": at, "token_type": "Bearer"})
    t = await make_client(idp).refresh("r", sub="alice")
    assert t.expires_at == 1_700_000_999


async def test_authorization_url_has_only_configured_values_and_s256() -> None:
    url = await make_client(FakeIdP()).authorization_url(state="st", nonce="no",
                                                          code_challenge="ch")
    q = parse_qs(urlsplit(url).query)
    assert q["code_challenge_method"] == ["S256"] and q["code_challenge"] == ["ch"]
    assert q["response_type"] == ["code"] and q["client_id"] == ["bff"]
    assert q["scope"] == ["openid offline_access"]


async def test_each_login_s_url_has_its_own_values_and_the_same_fixed_ones() -> None:
    """The fixed part is encoded once; every login's own values are encoded into its URL
    (a value that needs escaping is escaped), and none leaks into the next login's."""
    client = make_client(FakeIdP())
    first = await client.authorization_url(state="s&1", nonce="n 1", code_challenge="c1")
    second = await client.authorization_url(state="s2", nonce="n2", code_challenge="c2")
    q1, q2 = parse_qs(urlsplit(first).query), parse_qs(urlsplit(second).query)
    assert (q1["state"], q1["nonce"], q1["code_challenge"]) == (["s&1"], ["n 1"], ["c1"])
    assert (q2["state"], q2["nonce"], q2["code_challenge"]) == (["s2"], ["n2"], ["c2"])
    fixed = {"response_type", "client_id", "redirect_uri", "scope", "code_challenge_method"}
    assert {k: v for k, v in q1.items() if k in fixed} == {k: v for k, v in q2.items()
                                                          if k in fixed}
    assert set(q1) == set(q2) == fixed | {"state", "nonce", "code_challenge"}
    assert all(len(v) == 1 for v in q2.values())


async def test_par_pushes_the_request_and_sends_only_request_uri() -> None:
    idp = FakeIdP(par=True)
    url = await make_client(idp, use_par=True).authorization_url(state="st", nonce="no",
                                                                  code_challenge="ch")
    q = parse_qs(urlsplit(url).query)
    assert q == {"client_id": ["bff"], "request_uri": ["urn:par:1"]}
    pushed = parse_qs(next(r for r in idp.requests if r.url.path == "/par").content.decode())
    assert pushed["code_challenge_method"] == ["S256"] and pushed["state"] == ["st"]


async def test_end_session_url_and_revocation() -> None:
    idp = FakeIdP()
    client = make_client(idp)
    url = await client.end_session_url(id_token_hint="idt",
                                       post_logout_redirect_uri="https://app.example.com/")
    q = parse_qs(urlsplit(url or "").query)
    assert q["id_token_hint"] == ["idt"]
    assert await client.revoke("rt") is True
    form = parse_qs(idp.requests[-1].content.decode())
    assert form == {"token": ["rt"], "token_type_hint": ["refresh_token"]}


async def test_discovery_issuer_must_match_exactly() -> None:
    def wrong(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"issuer": ISSUER + "/", "authorization_endpoint": "a",
                                         "token_endpoint": "t", "jwks_uri": "j",
                                         "code_challenge_methods_supported": ["S256"]})

    from bffgate.oidc.errors import ProviderMisconfigured

    http = httpx.AsyncClient(transport=httpx.MockTransport(wrong))
    with pytest.raises(ProviderMisconfigured):
        await Discovery(http, ISSUER, FrozenClock()).metadata()


async def test_discovery_without_s256_is_refused() -> None:
    def plain_only(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"issuer": ISSUER, "authorization_endpoint": "a",
                                         "token_endpoint": "t", "jwks_uri": "j",
                                         "code_challenge_methods_supported": ["plain"]})

    from bffgate.oidc.errors import ProviderMisconfigured

    http = httpx.AsyncClient(transport=httpx.MockTransport(plain_only))
    with pytest.raises(ProviderMisconfigured):
        await Discovery(http, ISSUER, FrozenClock()).metadata()

