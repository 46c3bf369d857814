"""The proxy's HTTP/1.1 client for its upstreams: pooled keep-alive connections, nothing more.

Why not ``aiohttp.ClientSession``: the proxy sends requests whose every header it has already
built (and signed), to one known origin, and relays the answer as it is. The general client's
per-request work (URL objects, a header multidict, automatic headers, cookies, redirects,
tracing hooks, a request and response object graph) cost as much CPU as the whole rest of a bare
pass-through proxy. This client writes the header block it is given in one piece and parses the
answer with ``httptools`` (the llhttp parser Node.js uses, also behind uvicorn).

Its rules:

- One request at a time per connection (no pipelining); a connection goes back to the pool only
  after its response was read to the end and both sides allow keep-alive, else it is closed. At
  most ``limit`` connections are open; further requests wait, first come first served: a
  released connection (or the slot of a closed one) goes to the longest waiting request, never to
  one that arrived later, for at most ``connect`` seconds. Idle connections are dropped after
  ``keepalive`` seconds.
- A request on a reused connection that the upstream had closed meanwhile (it failed before any
  byte of an answer came) is sent once more on a new connection when its body can be replayed
  (none, or bytes); a streamed body is never replayed.
- Header names and values holding CR, LF or NUL are refused (``ValueError``) before anything is
  written: nothing can split the request. Values are sent as UTF-8, as received.
- A streamed body without ``Content-Length`` is sent chunked.
- Timeouts: ``connect`` for the connection, ``read`` for each wait for data (the response head,
  then every piece of its body), and a request's own ``total`` deadline over all of it. Expiry
  raises :class:`UpstreamTimeout` (a ``TimeoutError``); a connection that fails, or an answer that
  does not parse, :class:`UpstreamError` (an ``OSError``).
- An answer whose head (status line and headers) passes 64 KiB is an :class:`UpstreamError`.
- The response body is buffered at most ``high_water`` bytes ahead of its reader: past that the
  socket stops being read until the reader catches up, so a slow client never makes the proxy hold
  a large body.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Sequence
from typing import cast, final

import httptools

__all__ = ["UpstreamClient", "UpstreamError", "UpstreamResponse", "UpstreamTimeout"]

_NO_BODY_STATUS = frozenset((204, 304))
#: The most bytes an answer may take before its head is complete (aiohttp's client allows 8 KiB
#: lines and fields; S3 answers carry a few hundred bytes of headers).
_MAX_HEAD = 64 * 1024


class UpstreamError(OSError):
    """The upstream connection failed, or its answer was not valid HTTP/1.1."""


class UpstreamTimeout(TimeoutError):
    """The upstream did not connect, answer or send its body in time."""


_EXPIRED = object()


def _expire(waiter: asyncio.Future[object]) -> None:
    if not waiter.done():
        waiter.set_result(_EXPIRED)


def _time_out(waiter: asyncio.Future[_Connection | None]) -> None:
    if not waiter.done():
        waiter.set_exception(UpstreamTimeout("no upstream connection became free in time"))


@final
class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection and the response being read on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop, high_water: int) -> None:
        self._loop = loop
        self._high = high_water
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.reused = False
        self.counted = True  # in the pool's count of open connections until discarded
        self._parser = httptools.HttpResponseParser(self)
        self._head_only = False
        self._can_write: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[object] | None = None
        self._error: BaseException | None = None
        self._paused = False
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        self.head_done = False
        self.complete = False
        self.got_bytes = False
        self._interim = False
        self._extra = False
        self._keep_alive = False
        self._head_bytes = 0
        self._chunks: list[bytes] = []
        self._buffered = 0
        self._until_close = False

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's do not subclass asyncio.Transport, but behave as one).
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        if self.complete:
            # Bytes after a whole answer, which nobody asked for: the connection is done.
            self._extra = True
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamError("the upstream switched protocols"))
            return
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(f"the upstream's answer is not valid HTTP: {exc}"))
            return
        if not self.head_done:  # all of it was head: llhttp itself bounds no header block
            self._head_bytes += len(data)
            if self._head_bytes > _MAX_HEAD:
                self._fail(UpstreamError("the upstream's response head is too large"))

    def eof_received(self) -> bool | None:
        self._lost(None)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost(exc)

    def pause_writing(self) -> None:
        if self._can_write is None:
            self._can_write = self._loop.create_future()

    def resume_writing(self) -> None:
        self._release_writer()

    # httptools callbacks
    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # an interim answer (100 Continue, 103): the real one follows
            self.headers, self.reason, self._interim = [], "", True
            return
        self.status = status
        self.head_done = True
        self._keep_alive = self._parser.should_keep_alive()  # only meaningful here, per llhttp
        if self._head_only or status in _NO_BODY_STATUS:
            self.complete = True
        else:
            names = {name.lower() for name, _ in self.headers}
            self._until_close = "content-length" not in names and "transfer-encoding" not in names
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:  # a body to HEAD, 204 or 304: not ours to relay, and not reusable
            self._extra = True
            return
        self._chunks.append(body)
        self._buffered += len(body)
        if self._buffered > self._high and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            return
        self.complete = True
        self._wake()

    # the client's side
    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release_writer(self) -> None:
        can_write, self._can_write = self._can_write, None
        if can_write is not None and not can_write.done():
            can_write.set_result(None)

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        self.close()

    def _lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if self.head_done and self._until_close and not self.complete and exc is None:
            self.complete = True  # a body without length ends with the connection
        elif not self.complete and self._error is None:
            self._error = UpstreamError("the upstream closed the connection") if exc is None else exc
        self._release_writer()
        self._wake()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    @property
    def reusable(self) -> bool:
        return (
            self.complete
            and not self.closed
            and self._error is None
            and not self._until_close
            and not self._extra
            and self._keep_alive
        )

    def begin(self, head_only: bool) -> None:
        """Get ready to read the answer to a new request."""
        self._reset()
        self._head_only = head_only
        self._parser = httptools.HttpResponseParser(self)

    async def wait(self, deadline: float, read_timeout: float) -> None:
        """Until the parser moved on (or the connection ended); raises its error."""
        if self._error is not None:
            raise self._error
        if self.closed:
            raise UpstreamError("the upstream closed the connection")
        loop = self._loop
        waiter = self._waiter = loop.create_future()
        # A plain timer rather than asyncio.timeout(): this wait runs for every piece of every
        # answer, and the timer is a third of the cost.
        timer = loop.call_at(min(loop.time() + read_timeout, deadline), _expire, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None
        if waiter.result() is _EXPIRED:
            self.close()
            raise UpstreamTimeout("the upstream did not answer in time")
        if self._error is not None:
            raise self._error

    async def drain(self) -> None:
        """Until the socket takes more (or the connection ended)."""
        if self._can_write is not None:
            await self._can_write

    def take(self) -> bytes:
        """The body bytes read so far (and reading resumes)."""
        chunks, self._chunks, self._buffered = self._chunks, [], 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    @property
    def has_body_bytes(self) -> bool:
        return bool(self._chunks)


@final
class UpstreamResponse:
    """An upstream's answer: its status and headers, and its body read as it comes.

    Use it as an async context manager: leaving it returns the connection to the pool when the
    body was read to the end, else closes the connection.
    """

    __slots__ = ("_client", "_conn", "_deadline", "_read_timeout", "headers", "reason", "status")

    def __init__(
        self, client: UpstreamClient, conn: _Connection, deadline: float, read_timeout: float
    ) -> None:
        self._client = client
        self._conn = conn
        self._deadline = deadline
        self._read_timeout = read_timeout
        self.status = conn.status
        self.reason = conn.reason
        #: As received: names and values decoded as Latin-1, in order, repeats kept.
        self.headers: list[tuple[str, str]] = conn.headers

    @property
    def content_length(self) -> int | None:
        """The ``Content-Length`` the upstream declared, if any."""
        for name, value in self.headers:
            if len(name) == 14 and name.lower() == "content-length":
                return int(value) if value.isdigit() else None
        return None

    async def iter_chunked(self, size: int) -> AsyncIterator[bytes]:
        """The body in pieces of at most ``size`` bytes, as they arrive."""
        conn = self._conn
        while True:
            if conn.has_body_bytes:
                data = conn.take()
                for start in range(0, len(data), size):
                    yield data[start : start + size]
                continue
            if conn.complete:
                return
            await conn.wait(self._deadline, self._read_timeout)

    async def read(self) -> bytes:
        """The whole body (for answers the caller knows to be small)."""
        return b"".join([piece async for piece in self.iter_chunked(1 << 30)])

    async def __aenter__(self) -> UpstreamResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._client._release(self._conn)


@final
class UpstreamClient:
    """The connection pool of one upstream (``scheme://host:port``); see the module docstring."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        limit: int = 100,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        keepalive: float = 15.0,
        high_water: int = 256 * 1024,
    ) -> None:
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self._limit = limit
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._keepalive = keepalive
        self._high = high_water
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiters: list[asyncio.Future[_Connection | None]] = []
        self._closed = False

    async def request(
        self,
        method: str,
        target: str,
        headers: Sequence[tuple[str, str]],
        body: bytes | AsyncIterator[bytes] | None = None,
        *,
        total_timeout: float | None = None,
    ) -> UpstreamResponse:
        """Send ``method target`` with exactly ``headers`` (plus ``Transfer-Encoding: chunked``
        for a streamed body without ``Content-Length``) and return the answer once its head came."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (total_timeout if total_timeout is not None else 1e9)
        chunked = not isinstance(body, bytes | None) and not any(
            len(name) == 14 and name.lower() == "content-length" for name, _ in headers
        )
        head = _head(method, target, headers, chunked)
        replayable = body is None or isinstance(body, bytes)
        while True:
            conn = await self._acquire(loop, deadline)
            conn.begin(method == "HEAD")
            try:
                try:
                    await self._send(conn, head, body, chunked)
                except OSError:
                    if not conn.head_done:
                        raise
                while not conn.head_done:
                    await conn.wait(deadline, self._read_timeout)
            except UpstreamTimeout:
                self._discard(conn)
                raise
            except BaseException as exc:
                self._discard(conn)
                if conn.reused and not conn.got_bytes and replayable and isinstance(exc, OSError):
                    continue  # the upstream had closed an idle connection: once more on a new one
                if isinstance(exc, OSError):
                    raise UpstreamError(str(exc) or type(exc).__name__) from exc
                raise
            return UpstreamResponse(self, conn, deadline, self._read_timeout)

    async def _send(
        self, conn: _Connection, head: bytes, body: bytes | AsyncIterator[bytes] | None, chunked: bool
    ) -> None:
        transport = conn.transport
        assert transport is not None
        if body is None or isinstance(body, bytes):
            transport.write(head + body if body else head)
            return
        transport.write(head)
        async for piece in body:
            if conn.closed or conn.head_done:
                # The upstream answered (or went) before the body was through: relay what it
                # said; the connection, mid-body, can serve nothing else.
                conn.close()
                return
            if piece:
                transport.write(b"%x\r\n%b\r\n" % (len(piece), piece) if chunked else piece)
                await conn.drain()
        if chunked and not conn.closed:
            transport.write(b"0\r\n\r\n")

    async def _acquire(self, loop: asyncio.AbstractEventLoop, deadline: float) -> _Connection:
        if self._closed:
            raise UpstreamError("the upstream client is closed")
        if not self._waiters:  # first come, first served: nobody overtakes a waiting request
            conn = self._idle_connection(loop.time())
            if conn is not None:
                return conn
            if self._open < self._limit:
                return await self._connect(loop, deadline)
        # Wait for a connection handed over on release, or for a free slot (None) to open one in.
        waiter: asyncio.Future[_Connection | None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_at(min(loop.time() + self._connect_timeout, deadline), _time_out, waiter)
        try:
            handed = await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed over just as this request gave up: pass it on.
                got = waiter.result()
                if got is not None:
                    self._release(got)
                else:
                    self._slot_freed()
            raise
        finally:
            timer.cancel()
            if waiter in self._waiters:
                self._waiters.remove(waiter)
        if handed is not None:
            handed.reused = True
            return handed
        return await self._connect(loop, deadline, reserved=True)  # the slot came with the hand-off

    def _idle_connection(self, now: float) -> _Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed and now - conn.idle_since < self._keepalive:
                conn.reused = True
                return conn
            self._discard(conn)
        return None

    async def _connect(
        self, loop: asyncio.AbstractEventLoop, deadline: float, *, reserved: bool = False
    ) -> _Connection:
        if not reserved:
            self._open += 1
        try:
            async with asyncio.timeout(max(0.0, min(self._connect_timeout, deadline - loop.time()))):
                _, conn = await loop.create_connection(
                    lambda: _Connection(loop, self._high),
                    self._host,
                    self._port,
                    ssl=self._ssl,
                    server_hostname=self._host if self._ssl is not None else None,
                )
        except TimeoutError:
            self._slot_freed()
            raise UpstreamTimeout("the upstream did not accept a connection in time") from None
        except OSError as exc:
            self._slot_freed()
            raise UpstreamError(str(exc) or type(exc).__name__) from exc
        except BaseException:
            self._slot_freed()
            raise
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.reusable and not self._closed:
            conn.idle_since = asyncio.get_running_loop().time()
            if not self._give(conn):
                self._idle.append(conn)
        else:
            self._discard(conn)

    def _give(self, conn: _Connection | None) -> bool:
        """Hand ``conn`` (or, for ``None``, its slot in the count) to the longest waiting request;
        ``False`` when none waits."""
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(conn)
                return True
        return False

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        if conn.counted:
            conn.counted = False
            self._slot_freed()

    def _slot_freed(self) -> None:
        # A waiting request takes the slot over (the count stays), else it is free.
        if not self._give(None):
            self._open -= 1

    async def close(self) -> None:
        """Close every connection; requests after this fail."""
        self._closed = True
        for conn in self._idle:
            conn.close()
        self._idle.clear()


def _head(method: str, target: str, headers: Sequence[tuple[str, str]], chunked: bool) -> bytes:
    """The request line and header block, refused if any part could split it."""
    if " " in target or " " in method:
        raise ValueError("the request target or method holds a space")
    lines = [f"{method} {target} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    text = "\r\n".join(lines)
    # Joined with exactly len(lines) - 1 CRLFs: any other CR or LF came from a name or value.
    breaks = len(lines) - 1
    if text.count("\r") != breaks or text.count("\n") != breaks or "\0" in text:
        raise ValueError("a header name or value holds CR, LF or NUL")
    return (text + "\r\n\r\n").encode("utf-8")
