"""fedgate's HTTP server (gateway.web.server) over real TCP: header and body timeouts, client aborts,
and AWS-shaped answers for what aiohttp used to answer in plain text.

Clients here are raw asyncio sockets, because the inputs are ones no HTTP library sends: stalled
or trickling heads and bodies, connections dropped mid-body.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from gateway import hookimpl
from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.logs import JsonFormatter
from gateway.plugin_host import PluginHost
from gateway.web.server import GatewayRunner
from tests.conftest import config_from, eventually, serve_app

FORM = "Content-Type: application/x-www-form-urlencoded\r\n"
BIG = b"POST / HTTP/1.1\r\nHost: x\r\n" + FORM.encode() + b"Content-Length: 300000\r\n\r\n" + b"a" * 300000


@dataclass
class Served:
    port: int
    audit: Path

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()]


@pytest.fixture()
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    """A gateway with short timeouts: half a second for a head, a second per body read, two in all."""
    audit = tmp_path / "audit.jsonl"
    config = config_from(
        {
            "account_id": "123456789012",
            "audit": {"sink": "file", "path": str(audit)},
            "listen": {"header_timeout": 0.5, "body_read_timeout": 1.0, "body_timeout": 2.0},
        }
    )
    runner, port, _ = await serve_app(config)
    try:
        yield Served(port, audit)
    finally:
        await runner.cleanup()


Logs = Callable[[], list[str]]


@pytest.fixture()
def logged(caplog: pytest.LogCaptureFixture) -> Logs:
    """Every log record of the test so far, as the JSON line fedgate writes (tracebacks included)."""
    caplog.set_level(logging.DEBUG)
    formatter = JsonFormatter()
    return lambda: [formatter.format(record) for record in caplog.records]


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _read_all(reader: asyncio.StreamReader, within: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (fails after ``within`` s).

    Read as it comes: a server that closes with client bytes still unread resets the connection
    (TCP does), and a reader that waited for the end would lose the answer to that reset. A reset
    then ends what was sent, as the close would have.
    """
    received = bytearray()
    async with asyncio.timeout(within):
        while True:
            try:
                piece = await reader.read(65536)
            except ConnectionResetError:
                break
            if not piece:
                break
            received += piece
    return bytes(received)


def _status_and_code(raw: bytes) -> tuple[int, str]:
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    text = body.decode()
    return status, text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else ""


async def test_a_head_that_does_not_complete_in_time_is_cut_off(served: Served) -> None:
    reader, writer = await _connect(served.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    assert await _read_all(reader) == b""  # closed after header_timeout, nothing sent
    writer.close()


async def test_a_trickling_head_is_timed_from_its_first_byte(served: Served) -> None:
    _, writer = await _connect(served.port)
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: y\r\n" * 20 + b"\r\n"
    sent = 0
    with pytest.raises(ConnectionError):
        for byte in head:  # one byte every 50 ms: progress does not extend the deadline
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.05)
    assert sent < len(head)
    writer.close()


async def test_each_request_head_on_a_keepalive_connection_gets_its_own_deadline(served: Served) -> None:
    reader, writer = await _connect(served.port)
    for _ in range(3):
        await asyncio.sleep(0.4)  # idle between requests is keep-alive time, not head time
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        await asyncio.sleep(0.3)
        writer.write(b"\r\n")
        status = await reader.readline()
        assert status.startswith(b"HTTP/1.1 200"), status
        await reader.readuntil(b'{"status": "ok"}')
    writer.write(b"GET /healthz HTTP/1.1\r\n")
    assert await _read_all(reader) == b""
    writer.close()


async def test_a_stalled_body_is_answered_request_timeout_and_audited(served: Served, logged: Logs) -> None:
    reader, writer = await _connect(served.port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n" + FORM.encode() + b"Content-Length: 1000\r\n\r\nAction=")
    raw = await _read_all(reader)
    writer.close()
    assert _status_and_code(raw) == (400, "RequestTimeout")
    request_id = raw.split(b"x-amzn-RequestId: ", 1)[1].split(b"\r\n", 1)[0].decode()
    (event,) = [e for e in served.events() if e["requestID"] == request_id]
    assert event["errorCode"] == "RequestTimeout"
    assert not any("Traceback" in line for line in logged())


async def test_a_trickling_body_runs_out_of_its_total_budget(served: Served) -> None:
    reader, writer = await _connect(served.port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n" + FORM.encode() + b"Content-Length: 1000\r\n\r\n")
    answer = asyncio.ensure_future(_read_all(reader, within=15))
    # A byte every 0.3 s never trips the 1 s read timeout; the 2 s budget runs out after ~7 bytes.
    sent = 0
    while not answer.done() and sent < 100:
        writer.write(b"x")
        sent += 1
        await asyncio.sleep(0.3)
    raw = await answer
    writer.close()
    assert _status_and_code(raw) == (400, "RequestTimeout")
    assert sent < 30


async def test_a_client_gone_mid_body_is_audited_without_a_traceback(served: Served, logged: Logs) -> None:
    _, writer = await _connect(served.port)
    writer.write(b"POST / HTTP/1.1\r\nHost: x\r\n" + FORM.encode() + b"Content-Length: 1000\r\n\r\nAction=")
    await writer.drain()
    await asyncio.sleep(0.2)
    writer.transport.abort()
    for _ in range(50):
        if served.audit.exists() and served.events():
            break
        await asyncio.sleep(0.05)
    (event,) = served.events()
    assert event["errorCode"] == "IncompleteBody"
    lines = logged()
    assert any("request ended early" in line for line in lines)
    assert not any("Traceback" in line or '"exception"' in line for line in lines)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /no/such/api HTTP/1.1\r\nHost: x\r\n\r\n", 404, "NotFound"),
        (b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, "MethodNotAllowed"),
        (BIG, 413, "RequestEntityTooLarge"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n", 400, "BadRequest"),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 400, "RequestHeaderSectionTooLarge"),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 40, 400, "BadRequest"),  # TLS hello
    ],
    ids=["404", "405", "413", "bad-header", "long-line", "not-http"],
)
async def test_errors_outside_the_actions_are_aws_shaped(
    served: Served, logged: Logs, request_bytes: bytes, status: int, code: str
) -> None:
    reader, writer = await _connect(served.port)
    writer.write(request_bytes + b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    raw = await _read_all(reader)
    writer.close()
    head = raw.partition(b"\r\n\r\n")[0].decode("latin-1").lower()
    assert _status_and_code(raw) == (status, code)
    assert "content-type: text/xml" in head and "x-amzn-requestid: " in head
    if status == 405:
        assert "allow: get,post" in head
    assert b"<ErrorResponse" in raw and b"Traceback" not in raw
    assert not any("Traceback" in line for line in logged())
    if code == "RequestEntityTooLarge":
        (event,) = served.events()
        assert event["errorCode"] == code


class _ReturnsNothing:
    """A plugin whose route forgets to return a response: fails past the error middleware."""

    @hookimpl
    def fedgate_add_routes(self, app: web.Application, config: GatewayConfig) -> None:
        async def broken(request: web.Request) -> web.StreamResponse:
            return None  # type: ignore[return-value]

        app.router.add_get("/broken", broken)


async def test_a_failure_past_the_middleware_is_an_aws_shaped_500(logged: Logs) -> None:
    host = PluginHost(builtins=[_ReturnsNothing()])
    config = parse_config(
        {"account_id": "123456789012", "audit": {"sink": "none"}},
        provider_types=host.provider_types(),
        sections=host.config_sections(),
    )
    runner = GatewayRunner(create_app(config, host=host))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        reader, writer = await _connect(runner.addresses[0][1])
        writer.write(b"GET /broken?secret=s3cr3t HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        raw = await _read_all(reader)
        writer.close()
    finally:
        await runner.cleanup()
    assert _status_and_code(raw) == (500, "InternalFailure")
    (line,) = [json.loads(x) for x in logged() if "request failed outside the application" in x]
    assert (line["method"], line["path"], line["code"]) == ("GET", "/broken", "InternalFailure")
    assert "s3cr3t" not in "\n".join(logged())


async def test_connections_beyond_the_limit_get_503_and_the_rest_are_served(logged: Logs) -> None:
    config = config_from(
        {"account_id": "123456789012", "audit": {"sink": "none"}, "listen": {"max_connections": 3}}
    )
    runner, port, _ = await serve_app(config)
    try:
        held = [await _connect(port) for _ in range(3)]  # idle: they only hold their places
        reader, writer = await _connect(port)
        refused = await _read_all(reader)
        assert refused.startswith(b"HTTP/1.1 503 ") and b"Retry-After: 1\r\n" in refused
        writer.close()
        # The held ones still work; one closed frees a place for a newcomer.
        r, w = held[0]
        w.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await _read_all(r)).startswith(b"HTTP/1.1 200 ")
        w.close()

        async def served() -> bool:
            reader, writer = await _connect(port)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = await _read_all(reader)
            writer.close()
            return answer.startswith(b"HTTP/1.1 200 ")

        await eventually(served, what="a newcomer is served once a place is free")
        for _, w in held[1:]:
            w.close()
    finally:
        await runner.cleanup()
    assert sum("connection limit reached" in line for line in logged()) == 1


def test_serve_runs_on_the_event_loop_it_is_told(monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio
    import sys

    import uvloop

    from gateway.errors import ConfigError
    from gateway.web.server import new_event_loop

    for kind, expected in (("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)):
        loop = new_event_loop(kind)
        try:
            assert isinstance(loop, expected)
            assert kind == "asyncio" or not isinstance(loop, asyncio.BaseEventLoop)
        finally:
            loop.close()
    monkeypatch.setitem(sys.modules, "uvloop", None)  # as on a machine without it: import fails
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        new_event_loop("uvloop")
