"""``server.http_parser``: the uvicorn protocol class that serves, h11 or httptools (both
carry the framing policy of ``bffgate.http_protocol``)."""

from __future__ import annotations

import asyncio
import typing

from bffgate.config.model import HttpParser
from bffgate.http_protocol import FramingH11Protocol
from bffgate.speedups import with_httptools

PARSERS: tuple[str, ...] = typing.get_args(HttpParser)  # written once: the settings' Literal


def protocol_class(choice: str) -> type[asyncio.Protocol]:
    """The protocol for ``server.http_parser``: auto (httptools when installed, else h11),
    h11 or httptools."""
    plain: type[asyncio.Protocol] = FramingH11Protocol
    return with_httptools("server.http_parser", choice, PARSERS, plain_name="h11",
                          plain=plain, load=_httptools_protocol)


def _httptools_protocol() -> type[asyncio.Protocol]:
    from bffgate.http_protocol_httptools import FramingHttpToolsProtocol  # the speed extra

    return FramingHttpToolsProtocol
