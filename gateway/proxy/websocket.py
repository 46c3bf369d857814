"""WebSocket pass-through, for upstreams with ``websocket: true``, after the upgrade request is authorized.

The upgrade request was verified and decided like any other; the authorization covers the whole
connection, as API Gateway's ``$connect`` does. Messages are relayed both ways until either side
closes; the upstream connection uses fedgate's forwarded headers, never the client's credentials.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import aiohttp
from aiohttp import web
from yarl import URL

from gateway.errors import BadGateway
from gateway.metrics import Metrics

__all__ = ["relay_websocket"]

# Negotiated by each hop itself, never copied across.
_HANDSHAKE = frozenset(
    ("sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions", "sec-websocket-protocol")
)


async def relay_websocket(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: URL,
    headers: Sequence[tuple[str, str]],
    *,
    metrics: Metrics | None = None,
    name: str = "",
) -> web.WebSocketResponse:
    """Open the upstream WebSocket at ``url``, accept the client's, and relay until one closes.

    ``metrics`` counts the handshake as upstream ``name``'s request (its latency, or its failure)."""
    protocols = [p.strip() for p in request.headers.get("Sec-WebSocket-Protocol", "").split(",") if p.strip()]
    forward = [(n, v) for n, v in headers if n.lower() not in _HANDSHAKE and n.lower() != "content-length"]
    ws_url = url.with_scheme("wss" if url.scheme == "https" else "ws")
    started = time.perf_counter()
    try:
        upstream = await session.ws_connect(ws_url, headers=forward, protocols=protocols, autoclose=True)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        if metrics is not None:
            metrics.upstream_failed(name, exc)
        raise BadGateway("The upstream could not be reached.") from None
    if metrics is not None:
        metrics.upstream_answered(name, 101, time.perf_counter() - started)
    client = web.WebSocketResponse(protocols=[upstream.protocol] if upstream.protocol else ())
    await client.prepare(request)

    async def pump(
        source: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
        sink: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
    ) -> None:
        async for message in source:
            if message.type == aiohttp.WSMsgType.TEXT:
                await sink.send_str(message.data)
            elif message.type == aiohttp.WSMsgType.BINARY:
                await sink.send_bytes(message.data)
            else:
                break
        await sink.close()

    async with upstream:
        tasks = [asyncio.create_task(pump(client, upstream)), asyncio.create_task(pump(upstream, client))]
        done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        for task in done:
            task.result()
    await client.close()
    return client
