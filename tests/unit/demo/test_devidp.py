"""The development IdP, driven in-process: code flow with PKCE, rotation, revocation, logout."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from bffgate.demo.devidp import create_dev_idp

if TYPE_CHECKING:
    from conftest import Flow


async def keyset(flow: Flow) -> KeySet:
    response = await flow.client.get("/jwks")
    assert response.status_code == 200
    return KeySet.import_key_set(response.json())


def assert_oauth_error(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert "error_description" in response.json()
    assert response.headers["cache-control"] == "no-store"


# -- metadata -------------------------------------------------------------------------


async def test_discovery_document(flow: Flow) -> None:
    response = await flow.client.get("/.well-known/openid-configuration")
    assert response.status_code == 200
    meta = response.json()
    assert meta["issuer"] == flow.issuer
    for key, path in {
        "authorization_endpoint": "/authorize",
        "token_endpoint": "/token",
        "jwks_uri": "/jwks",
        "userinfo_endpoint": "/userinfo",
        "revocation_endpoint": "/revoke",
        "introspection_endpoint": "/introspect",
        "end_session_endpoint": "/end_session",
    }.items():
        assert meta[key] == flow.issuer + path
    assert meta["response_types_supported"] == ["code"]
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert meta["id_token_signing_alg_values_supported"] == ["ES256"]
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert set(meta["grant_types_supported"]) == {"authorization_code", "refresh_token"}
    assert "openid" in meta["scopes_supported"]
    assert "offline_access" in meta["scopes_supported"]
    assert meta["subject_types_supported"] == ["public"]


async def test_jwks_publishes_one_public_es256_key_with_kid(flow: Flow) -> None:
    keys = (await flow.client.get("/jwks")).json()["keys"]
    assert len(keys) == 1
    key = keys[0]
    assert key["kty"] == "EC"
    assert key["crv"] == "P-256"
    assert key["alg"] == "ES256"
    assert key["kid"]
    assert "d" not in key


def test_creation_logs_a_loud_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bffgate.demo.devidp"):
        create_dev_idp("http://idp.test", "c", "s", ["http://x/cb"], ["http://x/"])
    assert "development identity provider: NOT FOR PRODUCTION" in caplog.text


# -- the happy path -------------------------------------------------------------------


async def test_authorize_renders_the_login_form(flow: Flow) -> None:
    params = flow.authorize_params(state='"><script>alert(1)</script>')
    response = await flow.client.get("/authorize", params=params)
    assert response.status_code == 200
    html = response.text
    assert "DEVELOPMENT IDENTITY PROVIDER — NOT FOR PRODUCTION" in html
    assert 'name="username"' in html
    assert 'name="password"' in html
    assert f'name="code_challenge" value="{flow.challenge}"' in html
    assert "<script>" not in html
    assert "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert response.headers["x-frame-options"] == "DENY"


async def test_full_code_flow_with_pkce_and_a_verified_id_token(flow: Flow) -> None:
    params = flow.authorize_params()
    await flow.client.get("/authorize", params=params)
    posted = await flow.client.post("/authorize", data={**params, "username": "alice"})
    assert posted.status_code == 302
    callback = flow.query(posted.headers["location"])
    assert callback["state"] == "st-123"
    assert callback["iss"] == flow.issuer

    response = await flow.exchange(callback["code"])
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert body["refresh_token"]
    assert "offline_access" in body["scope"].split()

    keys = await keyset(flow)
    id_token = jwt.decode(body["id_token"], keys, algorithms=["ES256"])
    assert id_token.header["alg"] == "ES256"
    assert id_token.header["kid"] == keys.keys[0].kid
    claims = id_token.claims
    now = int(flow.clock())
    assert claims["iss"] == flow.issuer
    assert claims["sub"] == "alice"
    assert claims["aud"] == flow.client_id
    assert claims["nonce"] == "n-456"
    assert claims["iat"] == now
    assert claims["exp"] == now + 300
    assert claims["auth_time"] == now
    assert claims["sid"]
    assert claims["name"] == "Alice"
    assert claims["email"] == "alice@example.com"
    jwt.JWTClaimsRegistry(
        now=now,
        iss={"essential": True, "value": flow.issuer},
        aud={"essential": True, "value": flow.client_id},
        nonce={"essential": True, "value": "n-456"},
    ).validate(claims)

    access = jwt.decode(body["access_token"], keys, algorithms=["ES256"])
    assert access.header["typ"] == "at+jwt"
    for claim in ("iss", "sub", "aud", "exp", "iat", "jti", "scope", "client_id"):
        assert claim in access.claims
    assert access.claims["client_id"] == flow.client_id

    userinfo = await flow.client.get(
        "/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert userinfo.status_code == 200
    assert userinfo.json()["sub"] == "alice"


async def test_client_secret_post_is_accepted(flow: Flow) -> None:
    code = await flow.login()
    response = await flow.client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": flow.redirect_uri,
            "code_verifier": flow.verifier,
            "client_id": flow.client_id,
            "client_secret": flow.client_secret,
        },
    )
    assert response.status_code == 200, response.text


async def test_refresh_rotates_and_reuse_kills_the_family(flow: Flow) -> None:
    first = await flow.tokens()
    rotated = await flow.refresh(first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert (await flow.introspect(second["refresh_token"]))["active"] is True
    assert (await flow.introspect(second["access_token"]))["active"] is True

    reused = await flow.refresh(first["refresh_token"])
    assert_oauth_error(reused, 400, "invalid_grant")

    # the whole family is gone: the newest refresh token and every access token
    assert_oauth_error(await flow.refresh(second["refresh_token"]), 400, "invalid_grant")
    assert (await flow.introspect(second["refresh_token"])) == {"active": False}
    assert (await flow.introspect(second["access_token"])) == {"active": False}
    assert (await flow.introspect(first["access_token"])) == {"active": False}


async def test_other_grants_survive_a_family_kill(flow: Flow) -> None:
    victim = await flow.tokens("alice")
    bystander = await flow.tokens("bob")
    await flow.refresh(victim["refresh_token"])
    await flow.refresh(victim["refresh_token"])
    assert (await flow.refresh(bystander["refresh_token"])).status_code == 200


async def test_revoking_a_refresh_token_ends_its_grant(flow: Flow) -> None:
    tokens = await flow.tokens()
    assert (await flow.introspect(tokens["refresh_token"]))["active"] is True
    revoked = await flow.client.post(
        "/revoke",
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        headers=flow.basic_auth(),
    )
    assert revoked.status_code == 200
    assert (await flow.introspect(tokens["refresh_token"])) == {"active": False}
    assert (await flow.introspect(tokens["access_token"])) == {"active": False}
    assert_oauth_error(await flow.refresh(tokens["refresh_token"]), 400, "invalid_grant")


async def test_revoking_an_access_token_and_unknown_tokens(flow: Flow) -> None:
    tokens = await flow.tokens()
    for token in (tokens["access_token"], "not-a-token"):
        response = await flow.client.post(
            "/revoke", data={"token": token}, headers=flow.basic_auth()
        )
        assert response.status_code == 200
    assert (await flow.introspect(tokens["access_token"])) == {"active": False}
    assert (await flow.introspect(tokens["refresh_token"]))["active"] is True
    userinfo = await flow.client.get(
        "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert userinfo.status_code == 401


async def test_introspection_reports_an_active_access_token(flow: Flow) -> None:
    tokens = await flow.tokens()
    info = await flow.introspect(tokens["access_token"])
    assert info["active"] is True
    assert info["sub"] == "alice"
    assert info["client_id"] == flow.client_id
    assert info["token_type"] == "access_token"
    flow.clock.advance(301)
    assert (await flow.introspect(tokens["access_token"])) == {"active": False}


async def test_introspect_and_revoke_require_client_auth(flow: Flow) -> None:
    tokens = await flow.tokens()
    for path in ("/introspect", "/revoke"):
        response = await flow.client.post(path, data={"token": tokens["refresh_token"]})
        assert_oauth_error(response, 401, "invalid_client")
    assert (await flow.introspect(tokens["refresh_token"]))["active"] is True


# -- the authorization endpoint rejects -----------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge": "too-short"}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "profile"}, "invalid_scope"),
    ],
)
async def test_authorize_errors_redirect_back(
    flow: Flow, overrides: dict[str, str | None], error: str
) -> None:
    response = await flow.client.get("/authorize", params=flow.authorize_params(**overrides))
    assert response.status_code == 302
    assert response.headers["location"].startswith(flow.redirect_uri + "?")
    params = flow.query(response.headers["location"])
    assert params["error"] == error
    assert params["state"] == "st-123"
    assert params["iss"] == flow.issuer
    assert "code" not in params


async def test_plain_pkce_is_rejected_on_the_login_post_too(flow: Flow) -> None:
    data = {**flow.authorize_params(code_challenge_method="plain"), "username": "alice"}
    response = await flow.client.post("/authorize", data=data)
    assert response.status_code == 302
    assert flow.query(response.headers["location"])["error"] == "invalid_request"


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "http://evil.test/bff/callback"},
        {"redirect_uri": "http://gateway.test/bff/callback/"},
        {"redirect_uri": None},
        {"client_id": "someone-else"},
    ],
)
async def test_unknown_client_or_redirect_uri_never_redirects(
    flow: Flow, overrides: dict[str, str | None]
) -> None:
    response = await flow.client.get("/authorize", params=flow.authorize_params(**overrides))
    assert response.status_code == 400
    assert "location" not in response.headers
    posted = await flow.client.post(
        "/authorize", data={**flow.authorize_params(**overrides), "username": "alice"}
    )
    assert posted.status_code == 400
    assert "location" not in posted.headers


async def test_a_bad_username_re_renders_the_form(flow: Flow) -> None:
    data = {**flow.authorize_params(), "username": "<b>x</b>"}
    response = await flow.client.post("/authorize", data=data)
    assert response.status_code == 400
    assert "&lt;b&gt;x&lt;/b&gt;" in response.text
    assert "<b>x</b>" not in response.text


async def test_prompt_none_uses_the_idp_login_cookie(flow: Flow) -> None:
    anonymous = await flow.client.get("/authorize", params=flow.authorize_params(prompt="none"))
    assert flow.query(anonymous.headers["location"])["error"] == "login_required"
    await flow.login()
    silent = await flow.client.get("/authorize", params=flow.authorize_params(prompt="none"))
    assert silent.status_code == 302
    assert "code" in flow.query(silent.headers["location"])


# -- the token endpoint rejects -------------------------------------------------------


async def test_wrong_verifier_is_invalid_grant_and_burns_the_code(flow: Flow) -> None:
    code = await flow.login()
    wrong = "x" * 43
    assert_oauth_error(await flow.exchange(code, verifier=wrong), 400, "invalid_grant")
    assert_oauth_error(await flow.exchange(code), 400, "invalid_grant")


async def test_short_verifier_is_invalid_grant(flow: Flow) -> None:
    code = await flow.login()
    response = await flow.exchange(code, verifier=flow.verifier[:42])
    assert_oauth_error(response, 400, "invalid_grant")


async def test_code_is_single_use_and_replay_revokes_its_tokens(flow: Flow) -> None:
    code = await flow.login()
    tokens = (await flow.exchange(code)).json()
    assert_oauth_error(await flow.exchange(code), 400, "invalid_grant")
    assert (await flow.introspect(tokens["refresh_token"])) == {"active": False}


async def test_code_expires_after_sixty_seconds(flow: Flow) -> None:
    code = await flow.login()
    flow.clock.advance(61)
    assert_oauth_error(await flow.exchange(code), 400, "invalid_grant")


async def test_redirect_uri_must_match_at_the_token_endpoint(flow: Flow) -> None:
    code = await flow.login()
    response = await flow.client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://gateway.test/other",
            "code_verifier": flow.verifier,
        },
        headers=flow.basic_auth(),
    )
    assert_oauth_error(response, 400, "invalid_grant")


@pytest.mark.parametrize(
    "auth",
    [
        {"headers": {"Authorization": "Basic Zm9vOmJhcg=="}},
        {"headers": {"Authorization": "Basic not-base64!"}},
        {"data": {"client_id": "bffgate-demo", "client_secret": "wrong"}},
        {"data": {"client_id": "bffgate-demo"}},
        {},
    ],
)
async def test_bad_client_credentials_are_invalid_client(
    flow: Flow, auth: dict[str, dict[str, str]]
) -> None:
    code = await flow.login()
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": flow.redirect_uri,
        "code_verifier": flow.verifier,
        **auth.get("data", {}),
    }
    response = await flow.client.post("/token", data=data, headers=auth.get("headers", {}))
    assert_oauth_error(response, 401, "invalid_client")
    assert response.headers["www-authenticate"].startswith("Basic")
    # a failed client authentication does not consume the code
    assert (await flow.exchange(code)).status_code == 200


async def test_wrong_secret_in_basic_auth(flow: Flow) -> None:
    code = await flow.login()
    response = await flow.client.post(
        "/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "code_verifier": flow.verifier,
            "redirect_uri": flow.redirect_uri,
        },
        headers=flow.basic_auth(secret="not-the-secret"),
    )
    assert_oauth_error(response, 401, "invalid_client")


async def test_unsupported_grant_type_and_malformed_body(flow: Flow) -> None:
    response = await flow.client.post(
        "/token", data={"grant_type": "password"}, headers=flow.basic_auth()
    )
    assert_oauth_error(response, 400, "unsupported_grant_type")
    response = await flow.client.post(
        "/token", json={"grant_type": "refresh_token"}, headers=flow.basic_auth()
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_refresh_token_expires(flow: Flow) -> None:
    tokens = await flow.tokens()
    flow.clock.advance(86400)
    assert_oauth_error(await flow.refresh(tokens["refresh_token"]), 400, "invalid_grant")


async def test_refresh_cannot_widen_scope(flow: Flow) -> None:
    tokens = await flow.tokens()
    response = await flow.client.post(
        "/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "openid admin",
        },
        headers=flow.basic_auth(),
    )
    assert_oauth_error(response, 400, "invalid_scope")


async def test_userinfo_rejects_missing_and_forged_tokens(flow: Flow) -> None:
    tokens = await flow.tokens()
    for headers in (
        {},
        {"Authorization": "Bearer garbage"},
        {"Authorization": f"Bearer {tokens['id_token']}"},
        {"Authorization": f"Bearer {tokens['access_token'][:-4]}AAAA"},
    ):
        response = await flow.client.get("/userinfo", headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


# -- logout ---------------------------------------------------------------------------


async def test_end_session_redirects_with_state_and_ends_the_idp_login(flow: Flow) -> None:
    tokens = await flow.tokens()
    assert flow.client.cookies.get("devidp_login")
    response = await flow.client.get(
        "/end_session",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": flow.post_logout_uri,
            "state": "bye",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == flow.post_logout_uri + "?state=bye"
    assert "devidp_login" in response.headers["set-cookie"]
    assert not flow.client.cookies.get("devidp_login")
    silent = await flow.client.get("/authorize", params=flow.authorize_params(prompt="none"))
    assert flow.query(silent.headers["location"])["error"] == "login_required"


async def test_end_session_accepts_an_expired_id_token_hint(flow: Flow) -> None:
    tokens = await flow.tokens()
    flow.clock.advance(3600)
    response = await flow.client.get(
        "/end_session",
        params={
            "id_token_hint": tokens["id_token"],
            "post_logout_redirect_uri": flow.post_logout_uri,
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == flow.post_logout_uri


async def test_unregistered_redirect_uri_page_shows_received_and_registered_escaped(
    flow: Flow,
) -> None:
    received = 'http://gateway.test/cb"><script>alert(1)</script>'
    response = await flow.client.get(
        "/authorize", params=flow.authorize_params(redirect_uri=received)
    )
    assert response.status_code == 400
    html = response.text
    assert "redirect_uri is not registered for this client." in html
    assert "<script>" not in html
    expected = "http://gateway.test/cb&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"
    assert f'<code id="received">{expected}</code>' in html
    assert f"<li><code>{flow.redirect_uri}</code></li>" in html


async def test_unknown_client_id_page_shows_the_registered_one(flow: Flow) -> None:
    response = await flow.client.get(
        "/authorize", params=flow.authorize_params(client_id="<other>")
    )
    assert response.status_code == 400
    assert '<code id="received">&lt;other&gt;</code>' in response.text
    assert f"<li><code>{flow.client_id}</code></li>" in response.text


async def test_unregistered_post_logout_uri_page_shows_both(flow: Flow) -> None:
    response = await flow.client.get(
        "/end_session",
        params={"post_logout_redirect_uri": "http://evil.test/", "client_id": flow.client_id},
    )
    assert response.status_code == 400
    assert '<code id="received">http://evil.test/</code>' in response.text
    assert f"<li><code>{flow.post_logout_uri}</code></li>" in response.text


async def test_registration_hint_is_shown_when_given() -> None:
    app = create_dev_idp(
        "http://idp.test", "c", "s", ["http://gw.test/cb"], [], registration_hint="restart <it>"
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://idp.test"
    ) as client:
        response = await client.get("/authorize", params={
            "client_id": "c", "redirect_uri": "http://gw.test/other"})
    assert '<p class="hint" id="hint">restart &lt;it&gt;</p>' in response.text


@pytest.mark.parametrize(
    "params",
    [
        {"post_logout_redirect_uri": "http://evil.test/", "client_id": "bffgate-demo"},
        {"post_logout_redirect_uri": "http://gateway.test/"},
        {"id_token_hint": "forged"},
    ],
)
async def test_end_session_rejects_bad_requests(flow: Flow, params: dict[str, str]) -> None:
    response = await flow.client.get("/end_session", params=params)
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_end_session_without_redirect_shows_signed_out(flow: Flow) -> None:
    response = await flow.client.get("/end_session")
    assert response.status_code == 200
    assert "signed out" in response.text


async def test_no_token_reaches_the_logs(flow: Flow, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        tokens = await flow.tokens()
        await flow.refresh(tokens["refresh_token"])
    for secret in (
        tokens["access_token"],
        tokens["refresh_token"],
        tokens["id_token"],
        flow.client_secret,
        flow.verifier,
    ):
        assert secret not in caplog.text
