"""The agent's STS client: the gateway's own documents parsed, hostile answers refused, and the
network failures an outage brings each named in one line."""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aiohttp import web

from gateway.agent.config import GatewaySettings, parse_agent_config
from gateway.agent.errors import GatewayRefused, GatewayUnreachable
from gateway.agent.sts_client import MAX_RESPONSE_BYTES, StsClient, parse_credentials_response
from gateway.errors import ConfigError
from gateway.sigv4 import HttpRequest, parse_signature, verify
from gateway.sts.xml import error_document, response_document
from gateway.testing.tls import TestCA

ACTION = "AssumeRoleWithWebIdentity"
EXPIRES = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)


def success(**changes: object) -> bytes:
    credentials = {
        "AccessKeyId": "ASIAABCDEFGHIJKLMNOP",
        "SecretAccessKey": "s" * 40,
        "SessionToken": "t" * 300,
        "Expiration": EXPIRES,
    }
    credentials.update(changes)  # type: ignore[arg-type]
    result = {
        "Credentials": credentials,
        "AssumedRoleUser": {
            "Arn": "arn:aws:sts::123456789012:assumed-role/app/pod",
            "AssumedRoleId": "AROA:pod",
        },
        "SubjectFromWebIdentityToken": "system:serviceaccount:ns:app",
    }
    return response_document(ACTION, result, "req-1").encode()  # type: ignore[arg-type]


def test_the_gateways_answer_is_parsed() -> None:
    creds = parse_credentials_response(ACTION, 200, success())
    assert creds.access_key_id == "ASIAABCDEFGHIJKLMNOP"
    assert creds.secret_access_key == "s" * 40 and creds.session_token == "t" * 300
    assert creds.expiration == EXPIRES
    assert creds.account_id() == "123456789012"


def test_an_error_document_names_its_code() -> None:
    body = error_document("Sender", "AccessDenied", "Not authorized\x1b[31m to assume app", "req").encode()
    with pytest.raises(GatewayRefused) as info:
        parse_credentials_response(ACTION, 403, body)
    assert str(info.value) == f"the gateway refused {ACTION} (AccessDenied): Not authorized[31m to assume app"


def test_long_error_messages_are_cut() -> None:
    body = error_document("Sender", "InvalidIdentityToken", "x" * 5000, "req").encode()
    with pytest.raises(GatewayRefused) as info:
        parse_credentials_response(ACTION, 400, body)
    assert len(str(info.value)) < 400 and str(info.value).endswith("...")


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (200, b"<html>proxy login</html>", "HTTP 200 and no credentials"),
        (200, b"<html>unclosed", "no STS document"),
        (502, b"Bad Gateway", "HTTP 502 and no STS document"),
        (302, b"", "HTTP 302 and no STS document"),
        (200, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', "no STS document"),
        (500, success(), "HTTP 500 and no credentials"),
        (200, success().replace(ACTION.encode(), b"AssumeRole"), "no credentials"),
        (200, b"x" * (MAX_RESPONSE_BYTES + 1), "larger than"),
        (200, success(AccessKeyId="asia<lower>"), "AccessKeyId is malformed"),
        (200, success(AccessKeyId=""), "AccessKeyId is malformed"),
        (200, success(SecretAccessKey="short"), "SecretAccessKey is malformed"),
        (200, success(SessionToken="with space " * 3), "SessionToken is malformed"),
        (200, success(Expiration="tomorrow"), "not an ISO 8601 time"),
        (200, success(Expiration="2030-01-02T03:04:05"), "no time zone"),
    ],
)
def test_answers_that_are_not_credentials_are_refused(status: int, body: bytes, message: str) -> None:
    with pytest.raises(GatewayUnreachable, match=message):
        parse_credentials_response(ACTION, status, body)


def test_a_result_without_credentials_is_refused() -> None:
    body = response_document(ACTION, {"Provider": "x"}, "r").encode()
    with pytest.raises(GatewayUnreachable, match="holds no Credentials"):
        parse_credentials_response(ACTION, 200, body)


# --- over the network ----------------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, dict[str, object]]]:
    """An HTTP server whose behaviour the test sets: ``hang``, ``redirect`` or a document."""
    state: dict[str, object] = {"mode": "ok", "seen": []}
    done = asyncio.Event()

    async def handler(request: web.Request) -> web.StreamResponse:
        state["seen"].append(dict(await request.post()))  # type: ignore[attr-defined]
        if state["mode"] == "hang":
            await done.wait()
        if state["mode"] == "redirect":
            raise web.HTTPFound("http://127.0.0.1:1/elsewhere")
        return web.Response(body=success(), content_type="text/xml")

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}/", state
    done.set()
    await runner.cleanup()


async def _call(url: str, limit: float = 5) -> object:
    settings = GatewaySettings(url=url, timeout_seconds=limit)
    async with StsClient.open_session(settings) as session:
        return await StsClient(settings, session).assume_role_with_web_identity(
            role_arn="arn:aws:iam::123456789012:role/app",
            session_name="pod",
            token="tok.en.x",
            duration_seconds=900,
        )


async def test_the_call_sends_the_query_parameters(server: tuple[str, dict[str, object]]) -> None:
    url, state = server
    creds = await _call(url)
    assert creds.expiration - EXPIRES == timedelta(0)  # type: ignore[attr-defined]
    assert state["seen"] == [
        {
            "Action": ACTION,
            "Version": "2011-06-15",
            "RoleArn": "arn:aws:iam::123456789012:role/app",
            "RoleSessionName": "pod",
            "WebIdentityToken": "tok.en.x",
            "DurationSeconds": "900",
        }
    ]


async def test_a_redirect_is_not_followed(server: tuple[str, dict[str, object]]) -> None:
    url, state = server
    state["mode"] = "redirect"
    with pytest.raises(GatewayUnreachable, match="HTTP 302"):
        await _call(url)


async def test_a_gateway_that_hangs_times_out(server: tuple[str, dict[str, object]]) -> None:
    url, state = server
    state["mode"] = "hang"
    with pytest.raises(GatewayUnreachable, match=r"no answer within 0.3 s"):
        await _call(url, limit=0.3)


async def test_a_closed_port_is_named() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(GatewayUnreachable, match=rf"cannot reach the gateway at http://127.0.0.1:{port}/: "):
        await _call(f"http://127.0.0.1:{port}/")


async def test_https_with_the_gateways_private_ca() -> None:
    """A gateway behind a private CA: trusted with ``ca_file``, refused (one line) without it."""
    with TestCA() as ca:
        app = web.Application()

        async def handler(request: web.Request) -> web.StreamResponse:
            return web.Response(body=success(), content_type="text/xml")

        app.router.add_post("/", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ca.server_context()).start()
        url = f"https://127.0.0.1:{runner.addresses[0][1]}/"
        try:
            settings = GatewaySettings(url=url, ca_file=ca.cert_file)  # type: ignore[arg-type]
            async with StsClient.open_session(settings) as session:
                creds = await StsClient(settings, session).assume_role_with_web_identity(
                    role_arn="arn:aws:iam::123456789012:role/app",
                    session_name="pod",
                    token="t",
                    duration_seconds=900,
                )
            assert creds.access_key_id == "ASIAABCDEFGHIJKLMNOP"
            with pytest.raises(
                GatewayUnreachable, match=r"cannot reach the gateway at https://.*: TLS failed"
            ):
                await _call(url)
        finally:
            await runner.cleanup()


def test_a_ca_file_that_does_not_load_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "ca.pem"
    bad.write_text("not a certificate")
    with pytest.raises(ConfigError, match=r"gateway.ca_file: cannot load CA certificates"):
        parse_agent_config(
            {
                "gateway": {"url": "https://g.example.com", "ca_file": str(bad)},
                "roles": [
                    {
                        "name": "a",
                        "role_arn": "arn:aws:iam::123456789012:role/a",
                        "source": {"token_file": "/t"},
                    }
                ],
            }
        )


async def test_assume_role_is_signed_with_the_access_key() -> None:
    """The server checks the signature with the same verifier the gateway uses: the key id, the
    region and the ``sts`` scope, and a body hash that covers the form parameters."""
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    seen: list[tuple[str, dict[str, str]]] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        wire = HttpRequest(
            method=request.method,
            raw_path=request.raw_path.partition("?")[0],
            raw_query=request.raw_path.partition("?")[2],
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.raw_headers),
            payload_sha256=hashlib.sha256(body).hexdigest(),
        )
        info = parse_signature(wire)
        verified = verify(wire, info, secret, now=datetime.now(UTC), region="eu-west-1", service="sts")
        assert verified.payload_checked
        seen.append((verified.info.access_key_id, {k: str(v) for k, v in (await request.post()).items()}))
        return web.Response(body=success().replace(ACTION.encode(), b"AssumeRole"), content_type="text/xml")

    app = web.Application()
    app.router.add_post("/sts", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        settings = GatewaySettings(url=f"http://127.0.0.1:{runner.addresses[0][1]}/sts", region="eu-west-1")
        async with StsClient.open_session(settings) as session:
            creds = await StsClient(settings, session).assume_role(
                role_arn="arn:aws:iam::123456789012:role/app",
                session_name="build-host",
                duration_seconds=3600,
                access_key_id="AKIAIOSFODNN7EXAMPLE",
                secret_access_key=secret,
                external_id="ext-1",
            )
    finally:
        await runner.cleanup()
    assert creds.access_key_id == "ASIAABCDEFGHIJKLMNOP"
    assert seen == [
        (
            "AKIAIOSFODNN7EXAMPLE",
            {
                "Action": "AssumeRole",
                "Version": "2011-06-15",
                "RoleArn": "arn:aws:iam::123456789012:role/app",
                "RoleSessionName": "build-host",
                "DurationSeconds": "3600",
                "ExternalId": "ext-1",
            },
        )
    ]
