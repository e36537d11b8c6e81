"""A bench-only ``UpstreamClient`` over pyreqwest (Rust reqwest/hyper behind a Python API),
the same contract as ``bffgate.proxy.forward.AiohttpUpstream`` (like httpx_upstream.py for
httpx): ``send(method, url, headers, body, timeout)`` -> a response with ``status``,
``headers`` (lower-case bytes pairs), an async ``body()`` iterator and ``close()``. One
pooled client, no cookie jar, no redirects, no decompression, the body streamed both ways.
Not shipped: measured by bench/stack_candidates.py only.

Simplifications against AiohttpUpstream (fine for a cost measurement, not for production):
one request timeout (the route's response timeout, reqwest's per-request total), no idle
timeout once the headers are in, and a connection whose body was not read whole is left to
reqwest's pool to drop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from datetime import timedelta
from typing import Any

from pyreqwest.client import ClientBuilder
from pyreqwest.exceptions import ConnectTimeoutError, PyreqwestError, ReadTimeoutError, RequestTimeoutError

from bffgate.errors import GatewayError, UpstreamTimeout, UpstreamUnavailable
from bffgate.proxy.forward import OutgoingBody
from bffgate.proxy.timeouts import Timeouts


class _PyreqwestResponse:
    def __init__(self, resp: Any, stack: AsyncExitStack) -> None:
        self._resp = resp
        self._stack = stack
        self.status: int = resp.status
        self.headers = [(k.lower().encode("latin-1"), v.encode("latin-1"))
                        for k, v in resp.headers.items()]

    async def body(self) -> AsyncIterator[bytes]:
        reader = self._resp.body_reader
        try:
            while (chunk := await reader.read_chunk()) is not None:
                yield bytes(chunk)
        except (RequestTimeoutError, ReadTimeoutError) as exc:
            raise UpstreamTimeout(reason="upstream_read_timeout") from exc
        except PyreqwestError as exc:
            raise UpstreamUnavailable(reason="upstream_read_error") from exc

    async def close(self) -> None:
        await self._stack.aclose()


class PyreqwestUpstream:
    """The UpstreamClient contract over one pooled pyreqwest client."""

    def __init__(self, limit: int = 512) -> None:
        self._client = (ClientBuilder().max_connections(limit).pool_max_idle_per_host(limit)
                        .follow_redirects(False).gzip(False).brotli(False).deflate(False)
                        .zstd(False).build())

    async def send(self, method: str, url: str, headers: list[tuple[bytes, bytes]],
                   body: AsyncIterator[bytes] | None,
                   timeout: Timeouts | float) -> _PyreqwestResponse:
        t = timeout if isinstance(timeout, Timeouts) else Timeouts.of(timeout)
        outgoing = OutgoingBody(body, headers)
        builder = self._client.request(method, url).headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers])
        chunks = outgoing.chunks()
        if chunks is not None:
            builder = builder.body_stream(chunks)
        builder = builder.timeout(timedelta(seconds=t.response))
        stack = AsyncExitStack()
        try:
            resp = await stack.enter_async_context(builder.build_streamed())
        except GatewayError:
            raise
        except ConnectTimeoutError as exc:
            raise UpstreamTimeout(reason="upstream_connect_timeout") from exc
        except (RequestTimeoutError, ReadTimeoutError, TimeoutError) as exc:
            raise outgoing.error or UpstreamTimeout(reason="upstream_timeout") from exc
        except PyreqwestError as exc:
            raise outgoing.error or UpstreamUnavailable(reason="upstream_connect_error") from exc
        return _PyreqwestResponse(resp, stack)

    async def close(self) -> None:
        await self._client.close()
