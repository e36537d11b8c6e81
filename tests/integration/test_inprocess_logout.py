"""Integration: logout (endpoints/logout.py): revocation at the IdP and the end-session
redirect, with the whole gateway in-process (support/inprocess.py)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from support.inprocess import CLIENT, ISSUER, PUBLIC, SECRET, Harness

pytestmark = pytest.mark.integration


async def test_logout_revokes_and_redirects_to_end_session(h: Harness) -> None:
    await h.login()
    cookie = h.browser.cookies.get("__Host-bffgate")
    session = await h.gw.sessions.load(h.gw.sessions.decode_cookie(cookie))  # type: ignore[arg-type]
    assert session is not None
    rt, id_token = session.data.tokens.refresh_token, session.data.tokens.id_token
    assert rt and id_token

    async def active_at_idp() -> bool:  # RFC 7662, asked of the IdP itself
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=h.idp_app),
                                     base_url=ISSUER) as idp:
            r = await idp.post("/introspect", auth=(CLIENT, SECRET),
                               data={"token": rt, "token_type_hint": "refresh_token"})
        assert r.status_code == 200
        return bool(r.json()["active"])

    assert await active_at_idp()
    logout_url = (await h.api("GET", "/bff/user")).json()["logout_url"]
    r = await h.browser.get(logout_url)
    assert r.status_code == 302
    target = urlsplit(r.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == ISSUER + "/end_session"
    q = parse_qs(target.query)
    assert q["post_logout_redirect_uri"] == [PUBLIC + "/"]
    assert q["id_token_hint"] == [id_token]  # the session's own ID token, once
    assert q["client_id"] == [CLIENT]
    assert id_token not in r.text and all(id_token not in v for k, v in r.headers.items()
                                          if k != "location")
    assert not await active_at_idp()  # the IdP revoked the grant the session held
    assert (await h.api("GET", "/bff/user")).status_code == 401
