"""``server.upstream_client`` picks the client that forwards proxied calls."""

from __future__ import annotations

import pytest

from bffgate.config import ConfigError
from bffgate.proxy.clients import upstream_client_factory
from bffgate.proxy.forward import AiohttpUpstream
from bffgate.proxy.h1client import H1Upstream
from support.config_cases import load, problems


def test_auto_and_httptools_pick_the_gateways_client_aiohttp_aiohttps() -> None:
    assert upstream_client_factory("auto") is H1Upstream
    assert upstream_client_factory("httptools") is H1Upstream
    assert upstream_client_factory("aiohttp") is AiohttpUpstream


def test_an_unknown_client_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"server\.upstream_client: must be one of auto, "
                                          r"httptools, aiohttp; got 'curl'"):
        upstream_client_factory("curl")


def test_the_setting_is_checked_when_loaded_and_defaults_to_auto() -> None:
    assert load().server.upstream_client == "auto"
    assert load({"server": {"upstream_client": "aiohttp"}}).server.upstream_client == "aiohttp"
    assert any("server.upstream_client" in p
               for p in problems({"server": {"upstream_client": "curl"}}))
