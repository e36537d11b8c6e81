"""``server.upstream_client``: which ``UpstreamClient`` forwards proxied calls, the gateway's
HTTP/1.1 client on httptools (bffgate.proxy.h1client) or aiohttp's (bffgate.proxy.forward)."""

from __future__ import annotations

import typing
from collections.abc import Callable

from bffgate.config.model import UpstreamClientChoice
from bffgate.proxy.forward import AiohttpUpstream, UpstreamClient
from bffgate.speedups import with_httptools

CHOICES: tuple[str, ...] = typing.get_args(UpstreamClientChoice)


def upstream_client_factory(choice: str) -> Callable[[], UpstreamClient]:
    """auto: httptools' when installed (the image, the ``speed`` extra), else aiohttp's."""
    plain: Callable[[], UpstreamClient] = AiohttpUpstream
    return with_httptools("server.upstream_client", choice, CHOICES, plain_name="aiohttp",
                          plain=plain, load=_h1)


def _h1() -> Callable[[], UpstreamClient]:
    from bffgate.proxy.h1client import H1Upstream  # httptools: the speed extra

    return H1Upstream
