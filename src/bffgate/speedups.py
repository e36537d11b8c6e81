"""Settings of the form ``auto | httptools | <plain>`` (``server.http_parser``,
``server.upstream_client``): the implementation built on httptools when it is installed
(the image, the ``speed`` extra), else the plain one; ``httptools`` demands it."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bffgate.config.errors import ConfigError

T = TypeVar("T")


def with_httptools(setting: str, choice: str, choices: tuple[str, ...], *, plain_name: str,
                   plain: T, load: Callable[[], T]) -> T:
    """``load()`` (which imports the httptools-based implementation) unless ``choice`` is
    ``plain_name`` or httptools is missing under ``auto``; ConfigError naming ``setting``
    for an unknown choice or a missing httptools it demands."""
    if choice not in choices:
        raise ConfigError([f"{setting}: must be one of {', '.join(choices)}; got {choice!r}"])
    if choice == plain_name:
        return plain
    try:
        return load()
    except ImportError:
        if choice == "httptools":
            raise ConfigError([f"{setting}: httptools is not installed; install "
                               f"bffgate[speed] or set it to auto or {plain_name}"]) from None
        return plain
