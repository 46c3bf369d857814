"""The one aiohttp adapter: both front doors read headers the same way, over real TCP.

A header value that is not UTF-8 is refused (``InvalidParameterValue``) by the Query endpoint and by
the reverse proxy alike, before any signature or policy work; neither replaces the bytes with
U+FFFD, which would let two different byte strings read as one to the signature check and policy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from tests.conftest import config_from, serve_app

ACCOUNT = "123456789012"
AUTHORIZATION = (
    b"AWS4-HMAC-SHA256 Credential=ASIAEXAMPLEEXAMPLE12/20260101/us-east-1/sts/aws4_request, "
    b"SignedHeaders=host;x-amz-date, Signature=" + b"0" * 64
)


@pytest.fixture
async def port() -> AsyncIterator[int]:
    config = config_from(
        {
            "account_id": ACCOUNT,
            "audit": {"sink": "none"},
            "upstreams": [
                {
                    "name": "api",
                    "match": {"hosts": ["api.local"]},
                    "target": "http://127.0.0.1:9",  # never reached: refused before forwarding
                    "service": "execute-api",
                    "mapping": "api-gateway",
                    "auth": "none",
                }
            ],
        }
    )
    runner, port, _ = await serve_app(config)
    yield port
    await runner.cleanup()


async def _raw(port: int, host: bytes, target: bytes, extra: bytes) -> tuple[int, bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nX-Amz-Date: 20260101T000000Z\r\n"
        b"X-Amz-Security-Token: token\r\nAuthorization: " + AUTHORIZATION + b"\r\n" + extra + b"\r\n"
        b"Connection: close\r\n\r\n"
    )
    await writer.drain()
    raw = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), head, body


async def test_the_query_endpoint_refuses_a_header_that_is_not_utf8(port: int) -> None:
    status, _, body = await _raw(
        port, b"127.0.0.1", b"/?Action=GetCallerIdentity&Version=2011-06-15", b"X-Note: caf\xe9"
    )
    assert status == 400
    assert b"<Code>InvalidParameterValue</Code>" in body
    assert b"not valid UTF-8" in body


async def test_the_proxy_refuses_a_header_that_is_not_utf8(port: int) -> None:
    status, head, body = await _raw(port, b"api.local", b"/prod/items", b"X-Note: caf\xe9")
    assert status == 400
    assert json.loads(body)["__type"] == "InvalidParameterValue"
    assert b"x-amzn-ErrorType: InvalidParameterValue" in head


async def test_valid_utf8_in_a_header_passes_the_adapter(port: int) -> None:
    # The same request with the value in UTF-8 gets past the adapter to the signature check.
    status, _, body = await _raw(
        port, b"127.0.0.1", b"/?Action=GetCallerIdentity&Version=2011-06-15", "X-Note: café".encode()
    )
    assert status in (400, 403)
    assert b"InvalidParameterValue" not in body
