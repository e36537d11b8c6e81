"""``server.http_parser``: the uvicorn protocol class that serves, h11 or httptools (both
carry the framing policy of ``bffgate.http_protocol``)."""

from __future__ import annotations

import asyncio
import typing

from bffgate.config import ConfigError
from bffgate.config.model import HttpParser
from bffgate.http_protocol import FramingH11Protocol

PARSERS: tuple[str, ...] = typing.get_args(HttpParser)  # written once: the settings' Literal


def protocol_class(choice: str) -> type[asyncio.Protocol]:
    """The protocol for ``server.http_parser``: auto (httptools when installed, else h11),
    h11 or httptools."""
    if choice not in PARSERS:
        raise ConfigError([f"server.http_parser: must be one of {', '.join(PARSERS)}; "
                           f"got {choice!r}"])
    if choice == "h11":
        return FramingH11Protocol
    try:
        # Imported here: httptools is an optional extra (bffgate[speed]).
        from bffgate.http_protocol_httptools import FramingHttpToolsProtocol
    except ImportError:
        if choice == "httptools":
            raise ConfigError(["server.http_parser: httptools is not installed; install "
                               "bffgate[speed] or set it to auto or h11"]) from None
        return FramingH11Protocol
    return FramingHttpToolsProtocol
