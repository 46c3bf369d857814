"""The proxy when an upstream or a client misbehaves mid-request, and what the audit trail says.

A misbehaving upstream (aiohttp on loopback) cuts a response mid-stream, or trickles it within its
read timeout; a client stalls its upload. The audit event of each is a failure with its code, not
the upstream's 200; and a client whose upload waits on a slow upstream is not timed out for it. An
S3 upstream that resets before answering, hangs, or refuses connections is answered 502 or 504 in
S3's XML, naming nothing internal.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway import keys
from tests.conftest import BackgroundLoop, config_from, free_port, read_until_closed, serve_app

ACCOUNT = "123456789012"
MIB = 1024 * 1024
DECLARED = 4 * MIB  # what the misbehaving responses promise


async def _upstream_app() -> web.Application:
    async def cut(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(DECLARED)})
        await response.prepare(request)
        await response.write(b"x" * (256 * 1024))
        assert request.transport is not None
        request.transport.abort()  # the upstream dies mid-body
        return response

    async def trickle(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": str(DECLARED)})
        await response.prepare(request)
        await response.write(b"x" * (256 * 1024))
        while True:  # a byte every 0.1 s: each read is well within the read timeout
            await asyncio.sleep(0.1)
            await response.write(b"x")

    async def slow_reader(request: web.Request) -> web.Response:
        await asyncio.sleep(2)  # longer than the gateway's body_read_timeout
        digest = hashlib.sha256()
        async for piece in request.content.iter_chunked(MIB):
            digest.update(piece)
        return web.json_response({"sha256": digest.hexdigest()})

    async def reset(request: web.Request) -> web.StreamResponse:
        assert request.transport is not None
        request.transport.abort()  # the connection reset before any response byte
        return web.Response()

    async def hang(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(30)  # no response head within the upstream's read timeout
        return web.Response()

    app = web.Application(client_max_size=64 * MIB)
    app.router.add_get("/reset/{tail:.*}", reset)
    app.router.add_get("/hang/{tail:.*}", hang)
    app.router.add_get("/cut/{tail:.*}", cut)
    app.router.add_get("/trickle/{tail:.*}", trickle)
    app.router.add_post("/upload/{tail:.*}", slow_reader)
    return app


@dataclass
class Faulty:
    port: int
    audit: Path
    credentials: Credentials

    def events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.audit.read_text().splitlines()]

    def event(self, request_id: str) -> dict[str, Any]:
        for _ in range(100):  # the event is written as the handler ends, just after the cut
            found = [e for e in self.events() if e["requestID"] == request_id]
            if found:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no audit event for {request_id}")


@pytest.fixture(scope="module")
def faulty(background_loop: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    async def start_upstream() -> tuple[web.AppRunner, int]:
        # A short shutdown_timeout: at teardown the handlers still hanging or trickling are cancelled
        # after 0.1 s, not waited for (the hanging one would hold the teardown for its 30 s).
        runner = web.AppRunner(await _upstream_app(), access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner, runner.addresses[0][1]

    upstream, upstream_port = background_loop.run(start_upstream())
    audit = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    common = {
        "target": f"http://127.0.0.1:{upstream_port}",
        "service": "execute-api",
        "mapping": "api-gateway",
        "api_id": "faulty",
        "auth": "none",
    }
    config = config_from(
        {
            "account_id": ACCOUNT,
            "audit": {"sink": "file", "path": str(audit)},
            "listen": {"body_read_timeout": 1, "body_timeout": 2},
            "roles": [
                {
                    "name": "caller",
                    "trust_policy": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Federated": "x"},
                                "Action": "sts:AssumeRoleWithWebIdentity",
                            }
                        ],
                    },
                    "policies": [
                        {
                            "name": "invoke",
                            "document": {
                                "Version": "2012-10-17",
                                "Statement": [
                                    {
                                        "Effect": "Allow",
                                        "Action": ["execute-api:Invoke", "s3:GetObject"],
                                        "Resource": "*",
                                    }
                                ],
                            },
                        }
                    ],
                }
            ],
            "upstreams": [
                {"name": "cut", "match": {"path_prefix": "/cut"}, **common},
                {
                    "name": "trickle",
                    "match": {"path_prefix": "/trickle"},
                    "read_timeout": 5,
                    "total_timeout": 1.5,
                    **common,
                },
                {"name": "upload", "match": {"path_prefix": "/upload"}, **common},
                # S3 upstreams (S3's error dialect): one resetting, one hanging, one refusing.
                *(
                    {
                        "name": f"s3-{name}",
                        "match": {"hosts": [f"{name}.s3.test"]},
                        "target": target,
                        "service": "s3",
                        "mapping": "s3",
                        "auth": "none",
                        "read_timeout": 0.5,
                    }
                    for name, target in (
                        ("reset", f"http://127.0.0.1:{upstream_port}/reset"),
                        ("hang", f"http://127.0.0.1:{upstream_port}/hang"),
                        ("refused", f"http://127.0.0.1:{free_port()}"),
                    )
                ),
            ],
        }
    )
    runner, port, app = background_loop.run(serve_app(config))
    issued = app[keys.CREDENTIALS].issue(
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/caller", session_name="faults", duration_seconds=3600
    )
    credentials = Credentials(issued.access_key_id, issued.secret_access_key, issued.session_token)
    yield Faulty(port, audit, credentials)
    background_loop.run(runner.cleanup())
    background_loop.run(upstream.cleanup())


def _head(faulty: Faulty, method: str, path: str, body_sha256: str | None = None, length: int = 0) -> bytes:
    """A request head signed by botocore's SigV4 signer, as an AWS SDK would sign it."""
    url = f"http://127.0.0.1:{faulty.port}{path}"
    headers = {"X-Amz-Content-SHA256": body_sha256} if body_sha256 else {}
    request = AWSRequest(method=method, url=url, headers=headers)
    SigV4Auth(faulty.credentials, "execute-api", "us-east-1").add_auth(request)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{faulty.port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    if length:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _exchange(faulty: Faulty, head: bytes, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", faulty.port), timeout=15) as sock:
        sock.sendall(head + body)
        raw = read_until_closed(sock)
    top, _, payload = raw.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
    return int(lines[0].split(" ", 2)[1]), headers, payload


def test_a_response_the_upstream_cuts_mid_stream_is_audited_as_failed(faulty: Faulty) -> None:
    status, headers, body = _exchange(faulty, _head(faulty, "GET", "/cut/object"))
    assert status == 200 and headers["content-length"] == str(DECLARED)
    assert len(body) < DECLARED  # the client sees a truncated body, not a complete-looking one
    event = faulty.event(headers["x-amzn-requestid"])
    assert event["errorCode"] == "BadGateway"
    assert event["additionalEventData"]["statusCode"] == 200
    assert event["responseElements"] is None


def test_an_upstream_trickling_within_its_read_timeout_meets_the_total_deadline(faulty: Faulty) -> None:
    # Each read waits 0.1 s (read_timeout 5); the 1.5 s total deadline cuts it. Without one, this
    # response would take DECLARED / 10 seconds; the socket's 15 s timeout fails the test first.
    status, headers, body = _exchange(faulty, _head(faulty, "GET", "/trickle/object"))
    assert status == 200 and len(body) < DECLARED
    event = faulty.event(headers["x-amzn-requestid"])
    assert event["errorCode"] == "GatewayTimeout"
    assert event["additionalEventData"]["statusCode"] == 200


def test_an_upload_waiting_on_a_slow_upstream_is_not_timed_out(faulty: Faulty) -> None:
    # The upstream reads nothing for 2 s while the client has 32 MiB to send: the gateway stops
    # reading the client (backpressure) rather than waiting on it, so body_read_timeout (1 s) and
    # body_timeout (2 s) do not apply to that time.
    body = b"0123456789abcdef" * (2 * MIB)
    digest = hashlib.sha256(body).hexdigest()
    status, _, answer = _exchange(faulty, _head(faulty, "POST", "/upload/big", digest, len(body)), body)
    assert status == 200, answer
    assert json.loads(answer) == {"sha256": digest}


def test_a_client_stalling_its_upload_through_the_proxy_is_request_timeout(faulty: Faulty) -> None:
    body = b"x" * MIB
    head = _head(faulty, "POST", "/upload/stalled", hashlib.sha256(body).hexdigest(), len(body))
    status, headers, answer = _exchange(faulty, head, body[: 64 * 1024])
    assert (status, json.loads(answer)["__type"]) == (400, "RequestTimeout")
    assert faulty.event(headers["x-amzn-requestid"])["errorCode"] == "RequestTimeout"


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [("reset", 502, "BadGateway"), ("hang", 504, "GatewayTimeout"), ("refused", 502, "BadGateway")],
)
def test_an_s3_upstream_resetting_hanging_or_refusing_is_answered_in_s3_xml(
    faulty: Faulty, name: str, status: int, code: str
) -> None:
    host = f"{name}.s3.test"
    request = AWSRequest(method="GET", url=f"http://{host}/bucket/key")
    SigV4Auth(faulty.credentials, "s3", "us-east-1").add_auth(request)
    lines = ["GET /bucket/key HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in request.headers.items() if k.lower() != "host"]
    answer_status, headers, body = _exchange(faulty, ("\r\n".join(lines) + "\r\n\r\n").encode())
    assert answer_status == status
    assert body.startswith(b"<?xml") and f"<Error><Code>{code}</Code>".encode() in body
    assert b"127.0.0.1" not in body and b"aiohttp" not in body.lower()  # nothing internal
    assert faulty.event(headers["x-amzn-requestid"])["errorCode"] == code
