"""The proxy's own upstream client (gateway/proxy/client.py) against real servers on loopback.

aiohttp servers where a well-behaved upstream is wanted, raw asyncio servers where the bytes on the
wire must be chosen (a body read until close, a stale keep-alive connection, an answer that comes
before the upload ends, garbage).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web

from gateway.proxy.client import UpstreamClient, UpstreamError, UpstreamTimeout
from tests.conftest import serve_handler

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> tuple[web.AppRunner, int]:
    return await serve_handler(handler, client_max_size=16 * 1024 * 1024)


@contextlib.asynccontextmanager
async def raw_server(
    respond: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[int]:
    """A server answering each connection with ``respond``; every connection and handler is
    closed and finished when the block ends."""
    tasks: list[asyncio.Task[None]] = []

    async def wrapped(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.append(task)
        try:
            await respond(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(wrapped, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await server.wait_closed()
        await asyncio.sleep(0.01)  # the closed transports finish closing


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_connections_are_kept_alive_and_reused() -> None:
    peers: set[object] = set()

    async def handler(request: web.Request) -> web.Response:
        peers.add(request.transport)
        return web.Response(body=b"x" * 5000, headers={"X-Echo": request.headers.get("X-Test", "")})

    runner, port = await serve(handler)
    client = UpstreamClient("127.0.0.1", port)
    try:
        for i in range(5):
            async with await client.request("GET", f"/o/{i}", [("Host", "u"), ("X-Test", f"t{i}")]) as r:
                assert (r.status, r.content_length) == (200, 5000)
                assert ("X-Echo", f"t{i}") in r.headers
                assert await r.read() == b"x" * 5000
        assert len(peers) == 1  # one connection served all five
    finally:
        await client.close()
        await runner.cleanup()


async def test_bodies_go_as_bytes_or_streamed_with_or_without_length() -> None:
    async def handler(request: web.Request) -> web.Response:
        data = await request.read()
        framing = "chunked" if request.headers.get("Transfer-Encoding") == "chunked" else "length"
        return web.Response(text=f"{framing} {len(data)} {hashlib.sha256(data).hexdigest()}")

    async def pieces() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"y" * 65536

    runner, port = await serve(handler)
    client = UpstreamClient("127.0.0.1", port)
    whole = b"y" * (40 * 65536)
    digest = hashlib.sha256(whole).hexdigest()
    try:
        async with await client.request("PUT", "/a", [("Host", "u"), ("Content-Length", "5")], b"hello") as r:
            assert await r.read() == f"length 5 {hashlib.sha256(b'hello').hexdigest()}".encode()
        sized = [("Host", "u"), ("Content-Length", str(len(whole)))]
        async with await client.request("PUT", "/b", sized, pieces()) as r:
            assert await r.read() == f"length {len(whole)} {digest}".encode()
        async with await client.request("PUT", "/c", [("Host", "u")], pieces()) as r:
            assert await r.read() == f"chunked {len(whole)} {digest}".encode()
    finally:
        await client.close()
        await runner.cleanup()


async def test_head_204_and_a_body_read_until_close() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await read_head(reader)
            except asyncio.IncompleteReadError:
                break
            if head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            elif head.startswith(b"DELETE"):
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            else:  # no length, no chunking: the body ends with the connection
                writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + b"z" * 70000)
                await writer.drain()
                writer.close()
                break
        writer.close()

    async with raw_server(respond) as port:
        client = UpstreamClient("127.0.0.1", port)
        try:
            async with await client.request("HEAD", "/h", [("Host", "u")]) as r:
                assert (r.status, r.content_length, await r.read()) == (200, 1000, b"")
            async with await client.request("DELETE", "/d", [("Host", "u")]) as r:
                assert (r.status, await r.read()) == (204, b"")
            assert client._open == 1  # both on one connection
            async with await client.request("GET", "/g", [("Host", "u")]) as r:
                assert await r.read() == b"z" * 70000
            assert client._open == 0  # read until close: not reusable
        finally:
            await client.close()


async def test_a_stale_keep_alive_connection_is_replaced_once_for_a_replayable_request() -> None:
    served = 0

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        await read_head(reader)
        served += 1
        # Answers keep-alive, then closes anyway (as an upstream's idle timeout does).
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.close()

    async with raw_server(respond) as port:
        client = UpstreamClient("127.0.0.1", port)
        try:
            async with await client.request("GET", "/1", [("Host", "u")]) as r:
                assert await r.read() == b"ok"
            await asyncio.sleep(0.2)  # the idle connection has been closed by the server
            async with await client.request("GET", "/2", [("Host", "u")]) as r:
                assert await r.read() == b"ok"
            assert served == 2
        finally:
            await client.close()


async def test_header_injection_is_refused_before_anything_is_sent() -> None:
    connections = 0

    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    async with raw_server(respond) as port:
        client = UpstreamClient("127.0.0.1", port)
        try:
            for headers, target in (
                ([("Host", "u"), ("X-A", "v\r\nX-Evil: 1")], "/"),
                ([("Host", "u"), ("X-A\r\nX-Evil", "1")], "/"),
                ([("Host", "u"), ("X-A", "v\nX-Evil: 1")], "/"),
                ([("Host", "u"), ("X-A", "v\0")], "/"),
                ([("Host", "u")], "/ HTTP/1.1\r\nX-Evil: 1\r\n\r\nGET /"),
            ):
                with pytest.raises(ValueError):
                    await client.request("GET", target, headers)
            assert connections == 0
        finally:
            await client.close()


async def test_garbage_resets_and_silence_are_upstream_errors_or_timeouts() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await read_head(reader)
        if b"/garbage" in head:
            writer.write(b"SSH-2.0-OpenSSH_9.0\r\n\r\n")
        elif b"/cut" in head:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-some")
            await writer.drain()
            writer.close()
            return
        elif b"/endless-head" in head:
            writer.write(b"HTTP/1.1 200 OK\r\n")
            for n in range(10_000):  # far past any sane header block, in small writes
                writer.write(b"X-Filler-%d: %s\r\n" % (n, b"f" * 64))
                await writer.drain()
        elif b"/smuggle" in head:  # both framings at once: a desync waiting to happen
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
        elif b"/silent" in head:
            await asyncio.sleep(5)
        writer.close()

    async with raw_server(respond) as port:
        client = UpstreamClient("127.0.0.1", port, read_timeout=0.3)
        try:
            with pytest.raises(UpstreamError):
                await client.request("GET", "/garbage", [("Host", "u")])
            with pytest.raises(UpstreamError):
                await client.request("GET", "/closed", [("Host", "u")])
            with pytest.raises(UpstreamError, match="head is too large"):
                await client.request("GET", "/endless-head", [("Host", "u")])
            with pytest.raises(UpstreamError):
                await client.request("GET", "/smuggle", [("Host", "u")])
            async with await client.request("GET", "/cut", [("Host", "u")]) as r:
                with pytest.raises(UpstreamError):
                    await r.read()
            with pytest.raises(UpstreamTimeout):
                await client.request("GET", "/silent", [("Host", "u")])
            with pytest.raises(UpstreamTimeout):  # the request's own deadline, shorter than the read timeout
                await UpstreamClient("127.0.0.1", port, read_timeout=10).request(
                    "GET", "/silent", [("Host", "u")], total_timeout=0.2
                )
            assert client._open == 0
        finally:
            await client.close()


async def test_an_answer_before_the_upload_ends_is_relayed() -> None:
    async def respond(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 413 Too Large\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbig")
        await writer.drain()
        await asyncio.sleep(0.5)
        writer.close()

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(10_000):
            await asyncio.sleep(0.001)
            yield b"u" * 65536

    async with raw_server(respond) as port:
        client = UpstreamClient("127.0.0.1", port)
        try:
            r = await client.request(
                "PUT", "/big", [("Host", "u"), ("Content-Length", str(10_000 * 65536))], endless()
            )
            async with r:
                assert (r.status, await r.read()) == (413, b"big")
        finally:
            await client.close()


async def test_the_pool_holds_at_most_limit_connections_and_reads_a_body_only_as_it_is_taken() -> None:
    peers: set[object] = set()
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        peers.add(request.transport)
        if request.path == "/big":
            response = web.StreamResponse(headers={"Content-Length": str(64 * 1024 * 1024)})
            await response.prepare(request)
            for _ in range(1024):
                await response.write(b"b" * 65536)
            return response
        await release.wait()
        return web.Response(text="done")

    runner, port = await serve(handler)
    client = UpstreamClient("127.0.0.1", port, limit=2, high_water=128 * 1024)
    try:
        big = await client.request("GET", "/big", [("Host", "u")])
        await asyncio.sleep(0.3)  # the upstream writes as fast as it can; the client must not keep up
        assert big._conn._buffered <= 128 * 1024 + 65536 * 4
        waiting = [asyncio.create_task(client.request("GET", f"/w{i}", [("Host", "u")])) for i in range(3)]
        await asyncio.sleep(0.2)
        assert client._open == 2 and len(peers) == 2
        release.set()
        total = 0
        async with big:
            async for piece in big.iter_chunked(65536):
                total += len(piece)
        assert total == 64 * 1024 * 1024
        for task in waiting:
            async with await task as r:
                assert await r.read() == b"done"
        assert len(peers) <= 2
    finally:
        await client.close()
        await runner.cleanup()


@pytest.mark.parametrize("close", [False, True], ids=["kept-alive", "closed-after-each"])
async def test_waiting_requests_are_served_first_come_first_served(close: bool) -> None:
    seen: list[str] = []
    peers: set[object] = set()
    most = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal most
        peers.add(request.transport)
        seen.append(request.path)
        await asyncio.sleep(0.02)
        return web.Response(text="ok", headers={"Connection": "close"} if close else {})

    runner, port = await serve(handler)
    client = UpstreamClient("127.0.0.1", port, limit=2)

    async def fetch(path: str) -> None:
        nonlocal most
        async with await client.request("GET", path, [("Host", "u")]) as r:
            most = max(most, client._open)
            assert await r.read() == b"ok"

    try:
        first = [asyncio.create_task(fetch(f"/early/{i}")) for i in range(6)]
        await asyncio.sleep(0.005)  # the six are queued (two served, four waiting) ...
        late = [asyncio.create_task(fetch(f"/late/{i}")) for i in range(3)]  # ... before these
        await asyncio.gather(*first, *late)
        assert seen[:6] == [f"/early/{i}" for i in range(6)]  # no late request overtook one waiting
        assert sorted(seen[6:]) == [f"/late/{i}" for i in range(3)]
        assert most <= 2 and client._open <= 2 and not client._waiters
        assert len(peers) == (9 if close else 2)
    finally:
        await client.close()
        await runner.cleanup()


async def test_a_request_that_gives_up_waiting_passes_its_turn_on() -> None:
    release = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        if request.path == "/slow":
            await release.wait()
        return web.Response(text="ok")

    runner, port = await serve(handler)
    client = UpstreamClient("127.0.0.1", port, limit=1, connect_timeout=0.2)
    try:
        slow = asyncio.create_task(client.request("GET", "/slow", [("Host", "u")]))
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamTimeout):  # no connection frees within connect_timeout
            await client.request("GET", "/a", [("Host", "u")])
        cancelled = asyncio.create_task(client.request("GET", "/b", [("Host", "u")]))
        waiting = asyncio.create_task(client.request("GET", "/c", [("Host", "u")]))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        release.set()
        async with await slow as r:
            assert await r.read() == b"ok"
        async with await waiting as r:  # the connection went on to the one still waiting
            assert await r.read() == b"ok"
        assert client._open == 1 and not client._waiters
    finally:
        await client.close()
        await runner.cleanup()


async def test_a_released_connection_goes_to_the_waiting_request_not_to_a_newer_one() -> None:
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="ok")

    runner, port = await serve(handler)
    client = UpstreamClient("127.0.0.1", port, limit=1)
    go = asyncio.Event()

    async def later() -> bytes:
        await go.wait()
        async with await client.request("GET", "/later", [("Host", "u")]) as r:
            return await r.read()

    async def waiting() -> bytes:
        async with await client.request("GET", "/waiting", [("Host", "u")]) as r:
            return await r.read()

    try:
        held = await client.request("GET", "/held", [("Host", "u")])
        assert await held.read() == b"ok"
        first = asyncio.create_task(waiting())
        second = asyncio.create_task(later())
        await asyncio.sleep(0.05)  # /waiting waits for the one connection; /later for `go`
        go.set()  # /later becomes ready to run before /waiting is told ...
        await held.__aexit__(None, None, None)  # ... that the connection is free
        assert await first == b"ok" and await second == b"ok"
        assert seen == ["/held", "/waiting", "/later"]
    finally:
        await client.close()
        await runner.cleanup()
