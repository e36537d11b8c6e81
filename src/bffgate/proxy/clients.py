"""``server.upstream_client``: which ``UpstreamClient`` forwards proxied calls, the gateway's
HTTP/1.1 client on httptools (bffgate.proxy.h1client) or aiohttp's (bffgate.proxy.forward)."""

from __future__ import annotations

import typing
from collections.abc import Callable

from bffgate.config.errors import ConfigError
from bffgate.config.model import UpstreamClientChoice
from bffgate.proxy.forward import AiohttpUpstream, UpstreamClient

CHOICES: tuple[str, ...] = typing.get_args(UpstreamClientChoice)


def upstream_client_factory(choice: str) -> Callable[[], UpstreamClient]:
    """auto: httptools' when installed (the image, the ``speed`` extra), else aiohttp's."""
    if choice not in CHOICES:
        raise ConfigError([f"server.upstream_client: must be one of {', '.join(CHOICES)}; "
                           f"got {choice!r}"])
    if choice == "aiohttp":
        return AiohttpUpstream
    try:
        from bffgate.proxy.h1client import H1Upstream  # httptools: the speed extra
    except ImportError:
        if choice == "httptools":
            raise ConfigError(["server.upstream_client: httptools is not installed; install "
                               "bffgate[speed] or set it to auto or aiohttp"]) from None
        return AiohttpUpstream
    return H1Upstream
