"""API-Gateway-style and route-table upstreams, identity and none auth, against an echo server.

The echo upstream answers with what it received (method, raw path, headers, body digest), so the
tests see exactly what crossed the proxy.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.conftest import BackgroundLoop
from tests.proxy.conftest import ACCOUNT, Moto, ProxyGateway, proxy_config, start_gateway
from tests.proxy.helpers import Reply, send

ARN = f"arn:aws:execute-api:us-east-1:{ACCOUNT}:shop/prod"


@dataclass
class Echo:
    """The echo upstream and what it saw."""

    url: str
    seen: list[dict[str, Any]]


async def _echo_app(seen: list[dict[str, Any]]) -> web.Application:
    async def handle(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            seen.append({"ws": True, "headers": list(request.headers.items())})
            async for message in ws:
                await ws.send_str(f"echo:{message.data}")
            return ws
        if request.path.startswith("/slow"):
            await asyncio.sleep(2)
        body = await request.read()
        record = {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        seen.append(record)
        return web.json_response(record, headers={"Connection": "keep-alive, X-Hop", "X-Hop": "secret"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


@pytest.fixture(scope="module")
def echo(background_loop: BackgroundLoop) -> Iterator[Echo]:
    """The echo upstream on 127.0.0.1."""
    seen: list[dict[str, Any]] = []

    async def start() -> tuple[web.AppRunner, int]:
        runner = web.AppRunner(await _echo_app(seen), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, runner.addresses[0][1]

    runner, port = background_loop.run(start())
    yield Echo(f"http://127.0.0.1:{port}", seen)
    background_loop.run(runner.cleanup())


def _api_policy() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": [f"{ARN}/GET/orders/*", f"{ARN}/POST/orders"],
            },
            {
                "Effect": "Allow",
                "Action": "execute-api:Invoke",
                "Resource": [f"{ARN}/GET/socket", f"{ARN}/GET/down/*", f"{ARN}/GET/slow/*"],
            },
            {
                "Effect": "Allow",
                "Action": "orders:GetOrder",
                "Resource": f"arn:aws:orders:us-east-1:{ACCOUNT}:order/*",
                "Condition": {"StringEquals": {"orders:Format": "json", "aws:PrincipalTag/team": "storage"}},
            },
        ],
    }


@pytest.fixture(scope="module")
def http_gateway(
    background_loop: BackgroundLoop,
    issuer: Any,
    moto: Moto,
    echo: Echo,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyGateway]:
    """fedgate with the API and route-table upstreams in front of the echo server."""
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    config = proxy_config(issuer, moto.url, audit_path)
    roles = [role.model_dump() for role in config.roles]
    roles[0]["policies"].append({"name": "api", "document": _api_policy()})
    common = {"target": echo.url, "service": "execute-api", "mapping": "api-gateway", "api_id": "shop"}
    upstreams = [
        {"name": "api", "match": {"path_prefix": "/api"}, "strip_prefix": True, "auth": "identity", **common},
        {
            "name": "socket",
            "match": {"path_prefix": "/socket"},
            "auth": "none",
            "websocket": True,
            **common,
        },
        {
            "name": "orders",
            "match": {"path_prefix": "/svc"},
            "strip_prefix": True,
            "target": echo.url + "/base",
            "service": "orders",
            "mapping": "routes",
            "auth": "none",
            "routes": [
                {
                    "method": "GET",
                    "path": "/orders/{id}",
                    "action": "orders:GetOrder",
                    "resource": "arn:aws:orders:{region}:{account}:order/{id}",
                    "conditions": {"orders:Format": "query.format"},
                }
            ],
        },
        {
            "name": "down",
            "match": {"path_prefix": "/down"},
            "auth": "none",
            **common,
            "target": "http://127.0.0.1:9",
        },
        {"name": "slow", "match": {"path_prefix": "/slow"}, "auth": "none", "read_timeout": 0.3, **common},
    ]
    raw = {**config.model_dump(exclude={"providers", "sections", "upstreams", "roles"}), "roles": roles}
    raw["providers"] = [issuer.provider_config()]
    raw["upstreams"] = upstreams
    raw["audit"] = {"sink": "file", "path": str(audit_path)}
    from gateway.config import parse_config
    from gateway.plugin_host import PluginHost

    host = PluginHost()
    config = parse_config(
        json.loads(json.dumps(raw, default=str)),
        provider_types=host.provider_types(),
        sections=host.config_sections(),
    )
    runner, port, app = background_loop.run(start_gateway(config))
    url = f"http://127.0.0.1:{port}"
    yield ProxyGateway(sts_url=url, s3_url=url, port=port, app=app, audit_path=audit_path)
    background_loop.run(runner.cleanup())


@pytest.fixture(scope="module")
def api_credentials(http_gateway: ProxyGateway, issuer: Any) -> Credentials:
    import boto3
    from botocore.config import Config

    sts = boto3.client(
        "sts",
        endpoint_url=http_gateway.sts_url,
        region_name="us-east-1",
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
        config=Config(retries={"max_attempts": 1}),
    )
    creds = sts.assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/s3-app",
        RoleSessionName="api-test",
        WebIdentityToken=issuer.mint(),
    )["Credentials"]
    return Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])


def _call(
    gateway: ProxyGateway,
    creds: Credentials,
    method: str,
    path: str,
    *,
    body: bytes = b"",
    service: str = "execute-api",
    headers: dict[str, str] | None = None,
) -> Reply:
    """Sign with botocore's own SigV4 signer, as any AWS SDK calling an IAM-authorized API would."""
    url = f"http://127.0.0.1:{gateway.port}{path}"
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(creds, service, "us-east-1").add_auth(request)
    prepared = request.prepare()
    target = path
    out = [
        ("Host", f"127.0.0.1:{gateway.port}"),
        *((k, str(v)) for k, v in prepared.headers.items() if k.lower() != "host"),
    ]
    if body and not any(k.lower() == "content-length" for k, _ in out):
        out.append(("Content-Length", str(len(body))))
    return send(gateway.port, method, target, out, body)


def _received(reply: Reply) -> dict[str, Any]:
    assert reply.status == 200, reply.body
    record: dict[str, Any] = json.loads(reply.body)
    record["headers"] = {k.lower(): v for k, v in record["headers"]}
    return record


def test_api_gateway_allowed_with_identity_token(
    http_gateway: ProxyGateway, api_credentials: Credentials, background_loop: BackgroundLoop, echo: Echo
) -> None:
    reply = _call(
        http_gateway,
        api_credentials,
        "GET",
        "/api/orders/42",
        headers={"X-Fedgate-Identity": "forged", "X-Forwarded-For": "6.6.6.6"},
    )
    seen = _received(reply)
    assert seen["raw_path"] == "/orders/42"
    headers = seen["headers"]
    for stripped in ("authorization", "x-amz-security-token", "x-amz-date"):
        assert stripped not in headers
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["host"] == echo.url.removeprefix("http://")
    assert "x-hop" not in reply.headers  # hop-by-hop response header named in Connection
    token = headers["x-fedgate-identity"]
    assert token != "forged"

    async def fetch_jwks() -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{http_gateway.sts_url}/.well-known/jwks.json") as response,
        ):
            return await response.json()  # type: ignore[no-any-return]

    jwks = background_loop.run(fetch_jwks())
    key_set = KeySet.import_key_set(jwks)  # type: ignore[arg-type]
    claims = jwt.decode(token, key_set).claims
    assert claims["sub"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/s3-app/api-test"
    assert claims["aud"] == "api"
    assert claims["resource"] == f"{ARN}/GET/orders/42"
    assert claims["exp"] - claims["iat"] == 60


def test_api_gateway_body_is_verified_and_forwarded(
    http_gateway: ProxyGateway, api_credentials: Credentials
) -> None:
    body = json.dumps({"item": "book"}).encode()
    seen = _received(_call(http_gateway, api_credentials, "POST", "/api/orders", body=body))
    assert seen["method"] == "POST"
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()


def test_api_gateway_denied_is_json(
    http_gateway: ProxyGateway, api_credentials: Credentials, echo: Echo
) -> None:
    before = len(echo.seen)
    reply = _call(http_gateway, api_credentials, "DELETE", "/api/orders/42")
    assert reply.status == 403
    document = json.loads(reply.body)
    assert document["__type"] == "AccessDenied"
    assert document["requestId"] == reply.headers["x-amzn-requestid"]
    assert reply.headers["x-amzn-errortype"] == "AccessDenied"
    assert len(echo.seen) == before


def test_api_gateway_tampered_body_is_refused(
    http_gateway: ProxyGateway, api_credentials: Credentials, echo: Echo
) -> None:
    request = AWSRequest(method="POST", url=f"http://127.0.0.1:{http_gateway.port}/api/orders", data=b"real")
    SigV4Auth(api_credentials, "execute-api", "us-east-1").add_auth(request)
    headers = [("Host", f"127.0.0.1:{http_gateway.port}"), ("Content-Length", "4")]
    headers += [(k, str(v)) for k, v in request.headers.items() if k.lower() != "host"]
    before = len(echo.seen)
    reply = send(http_gateway.port, "POST", "/api/orders", headers, b"fake")
    assert (reply.status, json.loads(reply.body)["__type"]) == (403, "SignatureDoesNotMatch")
    assert len(echo.seen) == before


def test_route_table_maps_path_and_query(
    http_gateway: ProxyGateway, api_credentials: Credentials, echo: Echo
) -> None:
    seen = _received(
        _call(http_gateway, api_credentials, "GET", "/svc/orders/7?format=json", service="orders")
    )
    assert seen["raw_path"] == "/base/orders/7?format=json"
    before = len(echo.seen)
    denied = _call(http_gateway, api_credentials, "GET", "/svc/orders/7?format=xml", service="orders")
    assert denied.status == 403
    unmapped = _call(http_gateway, api_credentials, "GET", "/svc/customers/7", service="orders")
    assert unmapped.status == 403
    assert len(echo.seen) == before


def test_encoded_slash_is_refused_outside_s3(
    http_gateway: ProxyGateway, api_credentials: Credentials, echo: Echo
) -> None:
    before = len(echo.seen)
    reply = _call(http_gateway, api_credentials, "GET", "/api/orders%2F42")
    assert (reply.status, json.loads(reply.body)["__type"]) == (400, "InvalidParameterValue")
    assert len(echo.seen) == before


@pytest.mark.parametrize(
    ("path", "headers"),
    [
        ("/api//orders/42", None),  # a Deny on /api/orders/... must not be dodged by "//"
        ("/api/orders//42", None),
        ("/api/orders\\42", None),  # read as a slash by some upstreams
        ("/svc/orders/7?format=json&format=xml", None),  # the policy saw one value, the upstream two
    ],
)
def test_ambiguous_spellings_are_refused(
    path: str,
    headers: dict[str, str] | None,
    http_gateway: ProxyGateway,
    api_credentials: Credentials,
    echo: Echo,
) -> None:
    before = len(echo.seen)
    service = "orders" if path.startswith("/svc") else "execute-api"
    reply = _call(http_gateway, api_credentials, "GET", path, service=service, headers=headers)
    assert (reply.status, json.loads(reply.body)["__type"]) == (400, "InvalidParameterValue")
    assert len(echo.seen) == before


def test_a_repeated_header_is_refused(
    http_gateway: ProxyGateway, api_credentials: Credentials, echo: Echo
) -> None:
    """x-amz-acl twice would read as "public-read,public-read" to a Deny on "public-read"."""
    url = f"http://127.0.0.1:{http_gateway.port}/api/orders/42"
    request = AWSRequest(method="GET", url=url, headers={"X-Amz-Acl": "public-read"})
    SigV4Auth(api_credentials, "execute-api", "us-east-1").add_auth(request)
    out = [("Host", f"127.0.0.1:{http_gateway.port}")]
    out += [(k, str(v)) for k, v in request.prepare().headers.items() if k.lower() != "host"]
    out.append(("X-Amz-Acl", "public-read"))
    before = len(echo.seen)
    reply = send(http_gateway.port, "GET", "/api/orders/42", out, b"")
    assert (reply.status, json.loads(reply.body)["__type"]) == (400, "InvalidParameterValue")
    assert len(echo.seen) == before


def test_unsigned_body_is_refused_before_it_is_read(http_gateway: ProxyGateway, echo: Echo) -> None:
    """No signature, no session: refused before the proxy buffers the body it would have to hash."""
    body = b"x" * (2 * 1024 * 1024)
    headers = [("Host", f"127.0.0.1:{http_gateway.port}"), ("Content-Length", str(len(body)))]
    before = len(echo.seen)
    reply = send(http_gateway.port, "POST", "/api/orders", headers, body)
    assert (reply.status, json.loads(reply.body)["__type"]) == (403, "MissingAuthenticationToken")
    assert len(echo.seen) == before


def test_upstream_down_is_502_without_internals(
    http_gateway: ProxyGateway, api_credentials: Credentials
) -> None:
    reply = _call(http_gateway, api_credentials, "GET", "/down/x")
    assert reply.status == 502
    document = json.loads(reply.body)
    assert document["__type"] == "BadGateway"
    assert "127.0.0.1" not in document["message"] and "9" not in document["message"]


def test_upstream_timeout_is_504(http_gateway: ProxyGateway, api_credentials: Credentials) -> None:
    reply = _call(http_gateway, api_credentials, "GET", "/slow/x")
    assert (reply.status, json.loads(reply.body)["__type"]) == (504, "GatewayTimeout")


def test_websocket_is_relayed_after_authorization(
    http_gateway: ProxyGateway, api_credentials: Credentials, background_loop: BackgroundLoop
) -> None:
    url = f"http://127.0.0.1:{http_gateway.port}/socket"
    request = AWSRequest(method="GET", url=url)
    SigV4Auth(api_credentials, "execute-api", "us-east-1").add_auth(request)
    headers = {k: str(v) for k, v in request.headers.items()}

    async def talk() -> str:
        async with aiohttp.ClientSession() as session, session.ws_connect(url, headers=headers) as ws:
            await ws.send_str("hi")
            message = await ws.receive()
            return str(message.data)

    assert background_loop.run(talk()) == "echo:hi"


def test_unknown_paths_still_404_and_sts_still_answers(http_gateway: ProxyGateway) -> None:
    reply = send(http_gateway.port, "GET", "/nothing-here", [("Host", "127.0.0.1")])
    assert reply.status == 404
    sts = send(
        http_gateway.port, "GET", "/?Action=GetCallerIdentity&Version=2011-06-15", [("Host", "127.0.0.1")]
    )
    assert b"MissingAuthenticationToken" in sts.body


def test_audit_names_the_upstream(http_gateway: ProxyGateway, api_credentials: Credentials) -> None:
    _call(http_gateway, api_credentials, "GET", "/api/orders/1")
    events = [json.loads(line) for line in Path(http_gateway.audit_path).read_text().splitlines()]
    invoke = [e for e in events if e["resources"] and e["resources"][0]["ARN"] == f"{ARN}/GET/orders/1"]
    assert invoke[-1]["eventSource"] == "execute-api.amazonaws.com"
    assert invoke[-1]["additionalEventData"] == {"upstream": "api", "decision": "allowed", "statusCode": 200}
    assert invoke[-1]["eventName"] == "Invoke"
