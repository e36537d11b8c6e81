"""Unit tests of the probe's pure parts: the login redirect's checks, the comparison with
the gateway's own redirect, the findings (JSON line, scrubbing, doctor's titles), the form
reader and the metrics registry. The e2e tier (tests/e2e/test_probe.py) runs it for real."""

from __future__ import annotations

import dataclasses
import json
from urllib.parse import urlencode

import pytest
from prometheus_client import generate_latest

from bffgate.config import load_settings
from bffgate.oidc.discovery import ProviderMetadata
from bffgate.probe.browser import forms
from bffgate.probe.metrics import probe_registry
from bffgate.probe.redirect import dropped_or_changed, expected_params, redirect_problems
from bffgate.probe.result import DoctorFindings, Findings

CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 Appendix B
AUTHZ = "https://idp.example.com/authorize"


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("probe") / "bffgate.toml"
    path.write_text(
        '[server]\npublic_url = "https://app.example.com"\n'
        '[oidc]\nissuer = "https://idp.example.com"\nclient_id = "shop"\n'
        'client_secret = "s3cret-value-for-tests"\n'
        'extra_auth_params = { ui_locales = "de" }\n'
        '[session]\nstore = "memory"\n'
        '[cookie]\nsecret_keys = ["cookie-key-0123456789-0123456789-abcdef"]\n')
    return load_settings(path)


@pytest.fixture(scope="module")
def meta() -> ProviderMetadata:
    return ProviderMetadata.parse({
        "issuer": "https://idp.example.com", "authorization_endpoint": AUTHZ,
        "token_endpoint": "https://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
        "code_challenge_methods_supported": ["S256"]}, "https://idp.example.com")


def location(settings, **changes: str | None) -> str:  # type: ignore[no-untyped-def]
    params = {k: v or "x" * 43 for k, v in expected_params(settings).items()}
    params["code_challenge"] = CHALLENGE
    for k, v in changes.items():
        if v is None:
            params.pop(k)
        else:
            params[k] = v
    return AUTHZ + "?" + urlencode(params)


def test_the_gateways_own_redirect_passes(settings, meta) -> None:  # type: ignore[no-untyped-def]
    assert redirect_problems(location(settings), settings, meta) == []
    assert expected_params(settings)["redirect_uri"] == "https://app.example.com/bff/callback"
    assert expected_params(settings)["ui_locales"] == "de"


@pytest.mark.parametrize(("changes", "problem"), [
    pytest.param({"code_challenge": None}, "code_challenge missing", id="no-challenge"),
    pytest.param({"code_challenge_method": "plain"},
                 "code_challenge_method is 'plain', the gateway sends 'S256'", id="plain"),
    pytest.param({"state": None, "nonce": None}, "state, nonce missing", id="no-state-nonce"),
    pytest.param({"redirect_uri": "https://evil.example/cb"},
                 "redirect_uri is 'https://evil.example/cb'", id="redirect-uri-rewritten"),
    pytest.param({"code_challenge": "short"}, "not an S256 challenge", id="bad-challenge"),
    pytest.param({"ui_locales": None}, "ui_locales missing", id="extra-param-dropped"),
])
def test_a_damaged_redirect_is_named(settings, meta, changes, problem) -> None:  # type: ignore[no-untyped-def]
    found = redirect_problems(location(settings, **changes), settings, meta)
    assert any(problem in p for p in found), found


def test_wrong_target_and_duplicates(settings, meta) -> None:  # type: ignore[no-untyped-def]
    url = location(settings).replace(AUTHZ, "https://proxy.example.com/authorize") + "&state=y"
    found = redirect_problems(url, settings, meta)
    assert any("not to the IdP's authorization endpoint" in p for p in found)
    assert "state sent more than once" in found


def test_par_redirect_needs_only_client_id(settings, meta) -> None:  # type: ignore[no-untyped-def]
    par = AUTHZ + "?" + urlencode({"client_id": "shop", "request_uri": "urn:x:1"})
    assert redirect_problems(par, settings, meta) == []
    other = AUTHZ + "?" + urlencode({"client_id": "other", "request_uri": "urn:x:1"})
    assert redirect_problems(other, settings, meta) == ["client_id is 'other', the config says 'shop'"]


def test_comparison_ignores_fresh_values_and_names_the_rest(settings) -> None:  # type: ignore[no-untyped-def]
    direct = location(settings)
    public = location(settings, state="y" * 43, nonce="z" * 43, code_challenge="w" * 43)
    assert dropped_or_changed(direct, public) == []
    public = location(settings, code_challenge=None, scope="openid", foo="1")
    assert dropped_or_changed(direct, public) == ["code_challenge dropped", "foo added",
                                                  "scope changed"]


def test_json_line_scrubs_every_secret_and_keeps_the_shape() -> None:
    f = Findings()
    f.secret("state-value-123", "pw", None)  # "pw": too short to scrub
    f.add("login_redirect", True, "sent state-value-123", f.started)
    f.add("logout", False, "pw stays", f.started)
    doc = json.loads(f.json_line())
    assert doc["probe"] == "bffgate" and doc["ok"] is False
    assert [c["detail"] for c in doc["checks"]] == ["sent ***", "pw stays"]
    assert set(doc["checks"][0]) == {"name", "ok", "detail", "duration_ms"}
    assert "\n" not in f.json_line()
    assert f.text_lines()[-1] == "probe failed: logout"


def test_no_checks_is_not_healthy() -> None:
    assert Findings().healthy is False


def test_doctor_titles_become_check_names() -> None:
    f = Findings()
    report = DoctorFindings(f)
    report.ok("IdP discovery", "https://idp")
    report.fail("redirect URI https://app/bff/callback", "where", "refused", "register it")
    report.note("redirect URI https://x/cb", "cannot tell")
    report.fail("token endpoint auth method private_key_jwt", "oidc.client_auth", "no", "fix")
    assert [(c.name, c.ok) for c in f.checks] == [
        ("idp_discovery", True), ("redirect_uri_registered", False),
        ("redirect_uri_registered", True), ("client_auth_method", False)]
    assert f.checks[1].detail == "redirect URI https://app/bff/callback: where: refused; register it"
    assert report.failures == 2


def test_form_reader_finds_the_login_form() -> None:
    page = ('<form action="/i/1/login" method="post"><input type="hidden" name="prompt" '
            'value="login"><input type="text" name="login"><input type="password" '
            'name="password"><input type="checkbox" name="remember"><button>Go</button>'
            '</form><form action="/abort"><input type="submit" name="x" value="y"></form>')
    login, abort = forms(page, "https://idp.example.com/interaction/1")
    assert (login.action, login.method, login.username, login.password) == (
        "https://idp.example.com/i/1/login", "post", "login", "password")
    assert login.fields == {"prompt": "login", "login": "", "password": ""}
    assert (abort.action, abort.method, abort.password, abort.fields) == (
        "https://idp.example.com/abort", "get", None, {})


def test_metrics_registry() -> None:
    f = Findings()
    f.add("login_redirect", True, "", f.started)
    f.add("idp_authorize", False, "", f.started)
    text = generate_latest(probe_registry(f, 1.5)).decode()
    assert "bffgate_probe_success 0.0" in text
    assert "bffgate_probe_duration_seconds 1.5" in text
    assert 'bffgate_probe_check_success{check="login_redirect"} 1.0' in text
    assert 'bffgate_probe_check_success{check="idp_authorize"} 0.0' in text
    assert "bffgate_probe_last_run_timestamp_seconds" in text


def test_options_repr_hides_the_password() -> None:
    from bffgate.probe.run import ProbeOptions

    opts = ProbeOptions(user="probe", password="hunter2-secret")
    assert "hunter2" not in repr(opts)
    assert dataclasses.replace(opts, user="x").password == "hunter2-secret"
