"""fedgate's HTTP server: aiohttp's, with fedgate's limits, timeouts and low-level error answers.

aiohttp answers what never reaches a handler (a malformed request line or header, a header over
its limits) itself: in plain text that quotes the offending bytes, after logging them with a
traceback, so ``X-Amz-Security-Token: <token>\\x00`` put a valid token in the log and back on the
wire. It also has no header or body read timeout. This module wires fedgate's own behaviour
through aiohttp's low-level server seam (:class:`aiohttp.web.Server` and its
:class:`~aiohttp.web_protocol.RequestHandler`), and :class:`GatewayRunner` is how ``fedgate serve``
and the tests serve an application, so both run exactly this:

* **Limits** in one place (:data:`LIMITS`): the longest header fits the longest session token
  fedgate issues, and the longest request line a presigned URL carrying it.
* **Header timeout**: a request line and headers must be complete within
  ``listen.header_timeout`` of their first byte, or the connection is closed (slow loris).
  Idle keep-alive connections close after ``listen.keepalive_timeout``.
* **Body timeouts**: each read of a request body waits at most ``listen.body_read_timeout`` for
  the client, and all of one body's reads together at most ``listen.body_timeout``; then the read
  raises :class:`~gateway.errors.RequestTimeout`, which the handler answers and audits like any
  other error. Only time spent waiting for the client counts, not time the handler spent
  elsewhere (a slow upstream).
* **Shutdown**: a request in flight at SIGTERM completes, its body included (aiohttp would stop
  reading it); new connections are refused.
* **Connection limit**: at most ``listen.max_connections`` open connections per process; one more
  is answered ``503`` (``Retry-After: 1``, which SDKs retry) and closed before anything is read.
* **Memory**: what closed connections freed goes back to the system (:class:`_HeapTrimmer`).
* **Garbage collection** (:func:`tune_gc`): once serving, everything start-up made is frozen out
  of the collector and its first generation collects less often, so a full collection no longer
  walks every module, model and compiled policy (its 40-55 ms pauses were most of the p99 tail).
* **Operations**: HTTPS from rotating files (:mod:`gateway.web.tls`), SIGHUP handled in the loop
  (the certificate files, then the configuration's reload), the access log through aiohttp's
  access-logger seam (:mod:`gateway.web.accesslog`), open connections counted for the metrics.
* **Errors before routing** are AWS-shaped (an STS ``ErrorResponse``, the default dialect: no
  upstream is known yet) with a code, and are logged as one line: the request id, the status,
  the code and the parser's error class; never the bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import gc
import logging
import math
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, final

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import BaseTimerContext
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.http_parser import RawRequestMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from gateway import keys
from gateway.config import ListenSettings
from gateway.credentials import MAX_TOKEN_CHARS
from gateway.errors import (
    BadRequest,
    ConfigError,
    GatewayTimeout,
    InternalFailure,
    RequestHeaderSectionTooLarge,
    RequestTimeout,
    ServiceError,
)
from gateway.logs import request_id_var
from gateway.metrics import Metrics
from gateway.web.accesslog import JsonAccessLogger, access_logger
from gateway.web.middleware import log_path, new_request_id, sts_error_response
from gateway.web.tls import TlsFiles

__all__ = [
    "GC_THRESHOLDS",
    "LIMITS",
    "ErrorAnswer",
    "GatewayRunner",
    "ServerLimits",
    "new_event_loop",
    "run",
    "tune_gc",
]

log = logging.getLogger(__name__)

#: How a server answers a request that failed before routing: the error and its request id in, the
#: response out (STS's ``ErrorResponse`` by default; ``fedgate agent`` answers in its own dialects).
ErrorAnswer = Callable[[ServiceError, str], web.StreamResponse]


@final
@dataclass(frozen=True, slots=True)
class ServerLimits:
    """The sizes the HTTP parser accepts: the request line (``max_line_size``), a header's name
    and, separately, its value (``max_field_size``), and how many headers (``max_headers``)."""

    max_line_size: int
    max_field_size: int
    max_headers: int


#: The one set of limits every fedgate server runs with. A header value is at most the longest
#: session token fedgate issues (one byte more is refused); the request line at most a presigned
#: URL carrying that token, its other parameters and a long percent-encoded S3 key (1,024 bytes,
#: three characters each).
LIMITS: Final = ServerLimits(
    max_line_size=MAX_TOKEN_CHARS + 8192,
    max_field_size=MAX_TOKEN_CHARS,
    max_headers=128,
)

#: What a connection over ``listen.max_connections`` gets before it is closed: nothing was read, so
#: no dialect is known; SDKs retry a 503 (after Retry-After) whatever the body.
_OVER_LIMIT: Final = (
    b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
)

_TIMED_OUT: Final = (
    "Your socket connection to the server was not read from or written to within the timeout period."
)


@final
class _BodyTimer(BaseTimerContext):
    """Times the waits of one request body's reads; one that runs out raises RequestTimeout.

    aiohttp's :class:`~aiohttp.streams.StreamReader` enters its timer around every wait for data
    (and only then), so the budget is spent only while a reader waits for the client. Expiry
    works as aiohttp's own timers do: it cancels the waiting task, and the exit turns that
    cancellation into the error. The error is raised fresh each time and never stored on the
    reader: a stored one would tie the reader, the failed reads' frames and the body they buffered
    into a reference cycle that only a full garbage collection frees.
    """

    __slots__ = ("_budget", "_expired", "_handle", "_loop", "_per_read", "_started", "_task")

    def __init__(self, loop: asyncio.AbstractEventLoop, *, per_read: float, total: float) -> None:
        self._loop = loop
        self._per_read = per_read
        self._budget = total
        self._started = 0.0
        self._task: asyncio.Task[Any] | None = None
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    def assert_timeout(self) -> None:
        """Nothing to check between waits: an expiry raises as the wait ends."""

    def __enter__(self) -> BaseTimerContext:
        self._task = asyncio.current_task(self._loop)
        self._expired = False
        self._started = self._loop.time()
        self._handle = self._loop.call_later(max(0.0, min(self._per_read, self._budget)), self._expire)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._budget -= self._loop.time() - self._started
        task, self._task = self._task, None
        if self._expired and exc_type is asyncio.CancelledError and task is not None:
            self._expired = False
            if task.uncancel() == 0:  # the cancellation was ours alone, not a shutdown's
                raise RequestTimeout(_TIMED_OUT) from None

    def _expire(self) -> None:
        self._handle = None
        if self._task is not None:
            self._expired = True
            self._task.cancel()


def _low_level_error(status: int, exc: BaseException | None) -> ServiceError:
    if status == 504:
        return GatewayTimeout("The request did not complete in time.")
    if status >= 500:
        return InternalFailure("The request processing has failed because of an unknown error.")
    if isinstance(exc, LineTooLong):
        return RequestHeaderSectionTooLarge("Your request header section exceeds the maximum allowed size.")
    return BadRequest("The request could not be parsed as HTTP.")


class _Handler(RequestHandler):
    """aiohttp's connection handler with a header timeout and fedgate's low-level answers.

    Reads three of the base class's attributes (``_request_count``, ``_request_in_progress``,
    ``_messages``) to tell when a request head starts and ends, and sets two (``_close``,
    ``_force_close``) around reading a body in flight at shutdown; tests/web/test_server.py and
    tests/web/test_shutdown.py pin that behaviour for the installed aiohttp.
    """

    __slots__ = ("_answer", "_header_timeout", "_header_timer")

    def __init__(
        self, manager: web.Server, *, header_timeout: float, answer: ErrorAnswer, **kwargs: Any
    ) -> None:
        super().__init__(manager, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None
        self._answer = answer

    def data_received(self, data: bytes) -> None:
        """Feed the parser; time a request head from its first byte to its end."""
        if (self._close or self._force_close) and self._request_in_progress and self.transport is not None:
            # Shutting down: aiohttp marks every connection closing (and, waiting for its handler,
            # force-closing) and then drops whatever arrives, so an upload under way at SIGTERM
            # would hang until the shutdown timeout. The request in flight still gets the rest of
            # its body; nothing after it is served.
            flags = self._close, self._force_close
            self._close = self._force_close = False
            try:
                super().data_received(data)
            finally:
                self._close, self._force_close = flags
            return
        parsed = self._request_count
        super().data_received(data)
        if self._request_count != parsed:
            self._stop_header_timer()  # a head is complete
        elif data and self._header_timer is None and not self._request_in_progress and not self._messages:
            self._header_timer = self._loop.call_later(self._header_timeout, self._header_timed_out)

    def connection_lost(self, exc: BaseException | None) -> None:
        """Stop the header timer with the connection."""
        self._stop_header_timer()
        super().connection_lost(exc)

    def _stop_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if not self._request_in_progress and not self._messages:
            log.debug("request head not received in time; connection closed")
            self.force_close()

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """Answer a request that failed before or outside the application, AWS-shaped.

        ``message`` (aiohttp's description, which quotes the request) is never used.
        """
        error = _low_level_error(status, exc)
        request_id = new_request_id()
        token = request_id_var.set(request_id)
        try:
            fields = {"status": error.status, "code": error.code, "error": type(exc).__name__ if exc else ""}
            if error.status >= 500:
                # A real request that failed past the middleware (a bug): say which, as it does.
                fields.update(method=request.method, path=log_path(request))
                log.error("request failed outside the application", extra=fields, exc_info=exc)
            elif isinstance(exc, BadHttpMethod) and self._request_count == 1:
                # What TLS or other protocols sent to an HTTP port look like; noise, not news.
                log.debug("malformed request refused", extra=fields)
            else:
                log.info("malformed request refused", extra=fields)
        finally:
            request_id_var.reset(token)
        if request.writer.output_size > 0:
            # Part of a response is out already: the connection cannot carry another.
            raise ConnectionError("response already started")
        response = self._answer(error, request_id)
        response.headers["x-amzn-RequestId"] = request_id
        response.force_close()
        return response

    def log_exception(self, *args: Any, **kwargs: Any) -> None:
        """aiohttp's own failure records, reduced to the error class (their text can quote the
        request). A :class:`ServiceError` here was already answered (a body read that timed out,
        met again while aiohttp drained the rest of the body) and is not news."""
        exc = kwargs.get("exc_info")
        if isinstance(exc, ServiceError):
            log.debug("connection closed after %s", exc.code)
            return
        log.error("HTTP connection failed", extra={"error": type(exc).__name__ if exc is not None else None})


#: The collector's thresholds while serving: a young generation large enough that a request's
#: short-lived objects die of reference counting before a collection sees them; older ones rarely.
GC_THRESHOLDS: Final = (50_000, 20, 100)


def tune_gc() -> None:
    """Freeze what exists now (start-up's objects live for the whole process) out of the
    collector, and collect the young generation less often.

    Called once the server listens. A frozen object is never collected, so this must come after
    start-up's garbage is gone (hence the collection first); reference cycles made later are
    still found. Forked workers share the frozen pages copy-on-write, as the collector no longer
    touches their headers."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


@final
class _HeapTrimmer:
    """Hands the heap's free pages back to the system a moment after connections close.

    glibc's allocator keeps what a burst of buffered bodies freed (hundreds of megabytes after a
    few hundred stalled uploads) because a few live objects pin the top of the heap; only
    ``malloc_trim`` returns the free pages inside it. One call at most per ``delay`` seconds, a
    few microseconds when there is little to return. Without glibc (musl), nothing to do.
    """

    __slots__ = ("_delay", "_handle", "_loop", "_trim")

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float = 1.0) -> None:
        self._loop = loop
        self._delay = delay
        self._handle: asyncio.TimerHandle | None = None
        try:
            self._trim: Any = ctypes.CDLL(None).malloc_trim
        except (AttributeError, OSError):
            self._trim = None

    def soon(self) -> None:
        """Trim once, ``delay`` seconds from now, unless a trim is already due."""
        if self._trim is not None and self._handle is None:
            self._handle = self._loop.call_later(self._delay, self._run)

    def _run(self) -> None:
        self._handle = None
        self._trim(0)

    def cancel(self) -> None:
        """Forget a pending trim (the server is shutting down)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class _Server(web.Server):
    """aiohttp's low-level server, making :class:`_Handler` connections and timing request bodies."""

    def __init__(
        self,
        handler: Any,
        *,
        listen: ListenSettings,
        request_factory: Any,
        answer: ErrorAnswer,
        metrics: Metrics | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(handler, request_factory=self._timed_request, **kwargs)
        self._app_request_factory = request_factory
        self._listen = listen
        self._answer = answer
        self._metrics = metrics
        self._trimmer = _HeapTrimmer(self._loop)
        self._limit_logged = -math.inf

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        """Track (and count) the connection; above ``listen.max_connections``, answer 503 and close it."""
        super().connection_made(handler, transport)
        if self._metrics is not None:
            self._metrics.connection_opened()
        if len(self._connections) > self._listen.max_connections:
            transport.write(_OVER_LIMIT)
            transport.close()
            now = self._loop.time()
            if now >= self._limit_logged + 60:  # one line a minute at most, however many refused
                self._limit_logged = now
                log.warning(
                    "connection limit reached: new connections are refused with 503",
                    extra={"max_connections": self._listen.max_connections},
                )

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        """Forget the connection; return what its buffers freed to the system soon."""
        super().connection_lost(handler, exc)
        if self._metrics is not None:
            self._metrics.connection_closed()
        self._trimmer.soon()

    async def shutdown(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - aiohttp's signature
        """Close every connection (aiohttp's), then drop a pending trim."""
        await super().shutdown(timeout)
        self._trimmer.cancel()

    def __call__(self) -> RequestHandler:
        return _Handler(
            self,
            loop=self._loop,
            header_timeout=self._listen.header_timeout,
            answer=self._answer,
            **self._kwargs,
        )

    def _timed_request(
        self,
        message: RawRequestMessage,
        payload: StreamReader,
        protocol: RequestHandler,
        writer: AbstractStreamWriter,
        task: asyncio.Task[None],
    ) -> BaseRequest:
        request: BaseRequest = self._app_request_factory(message, payload, protocol, writer, task)
        if payload is not EMPTY_PAYLOAD:
            # StreamReader takes its timer at construction only, from the parser: set it here,
            # where each request starts, so every body gets a budget of its own.
            payload._timer = _BodyTimer(
                self._loop, per_read=self._listen.body_read_timeout, total=self._listen.body_timeout
            )
        return request


class GatewayRunner(web.AppRunner):
    """An :class:`aiohttp.web.AppRunner` for a fedgate application, serving it with fedgate's
    limits, timeouts and error answers (the application's ``listen`` settings). Use it wherever
    ``AppRunner`` would be: ``await runner.setup()``, then a ``TCPSite`` or ``SockSite``.

    An application without a gateway configuration (``fedgate agent``'s) gives ``listen`` and
    ``answer`` (how requests that fail before routing are answered) itself."""

    def __init__(
        self,
        app: web.Application,
        *,
        listen: ListenSettings | None = None,
        answer: ErrorAnswer = sts_error_response,
        **kwargs: Any,
    ) -> None:
        config = app.get(keys.CONFIG)
        listen = listen or app[keys.CONFIG].listen
        logs = config.access_log if config is not None else None
        super().__init__(
            app,
            access_log_class=JsonAccessLogger,
            access_log=access_logger(logs) if logs is not None and logs.enabled else None,
            keepalive_timeout=listen.keepalive_timeout,
            max_line_size=LIMITS.max_line_size,
            max_field_size=LIMITS.max_field_size,
            max_headers=LIMITS.max_headers,
            **kwargs,
        )
        self._listen = listen
        self._answer = answer

    async def _make_server(self) -> web.Server:
        # The base class starts the application up and builds aiohttp's server for it; keep its
        # handler and request factory, served by fedgate's server instead.
        made = await super()._make_server()
        front_door = self._app.get(keys.FRONT_DOOR)
        return _Server(
            front_door(self._app, made.request_handler) if front_door else made.request_handler,
            listen=self._listen,
            request_factory=made.request_factory,
            answer=self._answer,
            metrics=self._app.get(keys.METRICS),
            **self._kwargs,
        )


def new_event_loop(kind: str) -> asyncio.AbstractEventLoop:
    """An event loop of ``kind`` (``listen.event_loop``): ``asyncio`` or ``uvloop``.

    ``uvloop`` when it is not installed is a :class:`~gateway.errors.ConfigError` naming the fix.
    """
    if kind == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise ConfigError(
                "listen.event_loop: uvloop is not installed (pip install 'fedgate[uvloop]'); "
                "or choose asyncio"
            ) from None
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run(
    app: web.Application,
    *,
    host: str | None = None,
    port: int | None = None,
    sock: socket.socket | None = None,
    shutdown_timeout: float = 10.0,
    tls: TlsFiles | None = None,
    on_hangup: Callable[[], Coroutine[Any, Any, object]] | None = None,
    event_loop: str = "asyncio",
) -> None:
    """Serve ``app`` on ``host``:``port`` (or the bound ``sock``) until SIGINT or SIGTERM, then
    shut down gracefully: :func:`aiohttp.web.run_app` with :class:`GatewayRunner`, on the event
    loop :func:`new_event_loop` makes for ``event_loop`` (``listen.event_loop``).

    ``tls`` serves HTTPS (its files watched for changes). On SIGHUP the certificate files are
    checked and ``on_hangup`` (the configuration's reload) runs; connections are left alone."""

    async def serve() -> None:
        runner = GatewayRunner(app, handle_signals=True, shutdown_timeout=shutdown_timeout)
        await runner.setup()
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[object]] = set()

        def start(coro: Coroutine[Any, Any, object]) -> None:
            task = loop.create_task(coro)
            tasks.add(task)
            task.add_done_callback(tasks.discard)

        def hangup() -> None:
            if tls is not None:
                tls.reload()
            if on_hangup is not None:
                start(on_hangup())

        try:
            context = tls.context if tls is not None else None
            site: web.BaseSite = (
                web.SockSite(runner, sock, ssl_context=context)
                if sock is not None
                else web.TCPSite(runner, host, port, ssl_context=context)
            )
            await site.start()
            tune_gc()
            if tls is not None:
                start(tls.watch())
            loop.add_signal_handler(signal.SIGHUP, hangup)
            await asyncio.Event().wait()  # until a signal raises GracefulExit
        finally:
            loop.remove_signal_handler(signal.SIGHUP)
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()

    loop = new_event_loop(event_loop)
    main = loop.create_task(serve())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not main.done():
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(main)  # runs the runner's cleanup
        finally:
            rest = asyncio.all_tasks(loop)
            for task in rest:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()
