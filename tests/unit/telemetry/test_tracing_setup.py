"""Unit tests for bffgate.telemetry.setup and .clients: off is the identity (nothing wrapped,
no hook installed by it), on without the extra or with a bad OTEL_* value is a ConfigError
naming the key or variable, and the IdP calls are named from their form's grant only."""

from __future__ import annotations

import httpx
import pytest

from bffgate import telemetry
from bffgate.config import ConfigError, load_settings
from bffgate.config import rules as config_rules
from bffgate.config.model import Settings
from bffgate.telemetry import setup
from bffgate.telemetry.clients import idp_operation

BASE = {"server": {"public_url": "https://app.example"},
        "oidc": {"issuer": "https://idp.example", "client_id": "bff", "client_secret": "s" * 32},
        "cookie": {"secret_keys": ["k" * 43]}, "session": {"store": "memory"},
        "routes": [{"prefix": "/api", "upstream": "http://127.0.0.1:9", "token": "user"}]}


def settings(tracing: bool) -> Settings:
    return load_settings(None, environ={}, overrides={**BASE, "telemetry": {"tracing": tracing}})


def test_tracing_is_off_by_default_and_off_wraps_nothing() -> None:
    s = load_settings(None, environ={}, overrides=BASE)
    assert s.telemetry.tracing is False
    t = setup.Tracing(s, environ={"OTEL_TRACES_EXPORTER": "otlp"})
    app, store, factory, transport = object(), object(), object, httpx.AsyncHTTPTransport()
    assert not t.enabled
    assert t.edge(app, lambda _p: None) is app
    assert t.store(store) is store
    assert t.upstreams(factory) is factory
    assert t.idp_transport(transport) is transport


def test_the_environment_turns_it_on() -> None:
    s = load_settings(None, environ={"BFFGATE_TELEMETRY__TRACING": "true"}, overrides=BASE)
    assert s.telemetry.tracing is True


def test_otel_sdk_disabled_wins_over_the_config() -> None:
    assert not setup.Tracing(settings(True), environ={"OTEL_SDK_DISABLED": "true"}).enabled


def test_on_without_the_extra_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config_rules, "otel_installed", lambda: False)
    with pytest.raises(ConfigError) as exc:
        settings(True)
    assert exc.value.messages == [f"telemetry.tracing: {config_rules.OTEL_MISSING}"]
    assert "pip install 'bffgate[otel]'" in exc.value.messages[0]
    settings(False)  # off: the extra is never looked for


def test_on_without_the_extra_at_startup_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    s = settings(True)
    monkeypatch.setattr(setup, "otel_installed", lambda: False)
    with pytest.raises(ConfigError) as exc:
        setup.Tracing(s, environ={})
    assert exc.value.messages == [f"telemetry.tracing: {config_rules.OTEL_MISSING}"]


@pytest.mark.parametrize(("environ", "named"), [
    pytest.param({"OTEL_TRACES_EXPORTER": "jaeger"}, "OTEL_TRACES_EXPORTER", id="exporter"),
    pytest.param({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL",
                 id="protocol"),
    pytest.param({"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json"},
                 "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", id="traces-protocol"),
])
def test_a_bad_otel_variable_is_named(environ: dict[str, str], named: str) -> None:
    pytest.importorskip("opentelemetry.sdk")
    with pytest.raises(ConfigError) as exc:
        setup.Tracing(settings(True), environ=environ)
    assert exc.value.messages[0].startswith(f"{named}: ")


def test_on_installs_the_hooks_and_wraps() -> None:
    pytest.importorskip("opentelemetry.sdk")
    t = setup.Tracing(settings(True), environ={"OTEL_TRACES_EXPORTER": "none"})
    assert t.enabled
    assert telemetry.current_traceparent() is None  # no span is current here
    app = object()
    assert t.edge(app, lambda _p: None) is not app
    store = object()
    assert t.store(store) is store  # the memory store is not Redis: left alone


@pytest.mark.parametrize(("method", "url", "body", "expected"), [
    pytest.param("POST", "https://idp/token", b"grant_type=authorization_code&code=c&code_verifier=v",
                 ("oidc code exchange", "authorization_code"), id="code"),
    pytest.param("POST", "https://idp/token", b"grant_type=refresh_token&refresh_token=r",
                 ("oidc refresh", "refresh_token"), id="refresh"),
    pytest.param("POST", "https://idp/token",
                 b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Atoken-exchange&subject_token=t",
                 ("oidc token exchange", "urn:ietf:params:oauth:grant-type:token-exchange"),
                 id="token-exchange"),
    pytest.param("POST", "https://idp/token", b"grant_type=client_credentials",
                 ("oidc client credentials", "client_credentials"), id="client-credentials"),
    pytest.param("POST", "https://idp/token", b"grant_type=password&password=p",
                 ("oidc POST", None), id="unknown-grant-not-named"),
    pytest.param("POST", "https://idp/revoke", b"token=r&token_type_hint=refresh_token",
                 ("oidc revocation", None), id="revocation"),
    pytest.param("POST", "https://idp/par", b"response_type=code&client_id=bff",
                 ("oidc par", None), id="par"),
    pytest.param("GET", "https://idp/.well-known/openid-configuration", b"",
                 ("oidc discovery", None), id="discovery"),
    pytest.param("GET", "https://idp/jwks", b"", ("oidc GET", None), id="jwks"),
])
def test_idp_calls_are_named_by_their_grant(method: str, url: str, body: bytes,
                                            expected: tuple[str, str | None]) -> None:
    assert idp_operation(httpx.Request(method, url, content=body)) == expected
