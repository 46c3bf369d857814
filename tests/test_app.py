"""The application shell: probes, request ids, JSON logs, error rendering, and the Redis store."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from gateway import hookimpl
from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.logs import configure_logging
from gateway.plugin_host import PluginHost
from gateway.testing import OIDCTestIssuer

Client = TestClient[Any, Any]


class Crash:
    """A plugin whose route fails with an unexpected exception."""

    @hookimpl
    def fedgate_add_routes(self, app: web.Application, config: GatewayConfig) -> None:
        async def boom(request: web.Request) -> web.Response:
            logging.getLogger("tests.crash").warning("about to fail")
            raise RuntimeError("internal detail: /etc/secret-path")

        app.router.add_get("/crash", boom)


def _config(raw: Mapping[str, Any], host: PluginHost) -> GatewayConfig:
    return parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())


BASE = {"account_id": "123456789012", "audit": {"sink": "none"}}


@pytest.fixture()
def log_stream() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", stream)
    yield stream
    logging.getLogger().handlers.clear()


async def test_probes(aiohttp_client: Any) -> None:
    host = PluginHost()
    client: Client = await aiohttp_client(create_app(_config(BASE, host), host=host))
    health = await client.get("/healthz")
    assert health.status == 200 and (await health.json()) == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    assert ready.headers["x-amzn-RequestId"] != health.headers["x-amzn-RequestId"]


async def test_readyz_reports_an_unreachable_store(aiohttp_client: Any) -> None:
    host = PluginHost()
    raw = {**BASE, "store": {"backend": "redis", "url": "redis://127.0.0.1:1/0"}}
    client: Client = await aiohttp_client(create_app(_config(raw, host), host=host))
    ready = await client.get("/readyz")
    assert ready.status == 503
    assert (await ready.json())["checks"]["store"] == "unavailable"


async def test_unexpected_errors_are_internal_failures_logged_with_the_request_id(
    aiohttp_client: Any, log_stream: io.StringIO
) -> None:
    host = PluginHost(builtins=[Crash()])
    client: Client = await aiohttp_client(create_app(_config(BASE, host), host=host))
    response = await client.get("/crash")
    body = await response.text()
    request_id = response.headers["x-amzn-RequestId"]
    assert response.status == 500
    assert "<Code>InternalFailure</Code>" in body and f"<RequestId>{request_id}</RequestId>" in body
    assert "secret-path" not in body and "RuntimeError" not in body
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    mine = [line for line in lines if line.get("request_id") == request_id]
    assert {line["message"] for line in mine} >= {
        "about to fail",
        "unhandled error while handling GET /crash",
    }
    assert all(line["level"] in {"WARNING", "ERROR"} for line in mine)


async def test_unsupported_method(aiohttp_client: Any) -> None:
    host = PluginHost()
    client: Client = await aiohttp_client(create_app(_config(BASE, host), host=host))
    response = await client.delete("/")
    assert response.status == 405


async def test_sts_over_a_redis_store(aiohttp_client: Any, redis_url: str, redis_run_prefix: str) -> None:
    """The whole exchange with state in a real Redis, signing GetCallerIdentity with botocore."""
    async with OIDCTestIssuer(path="/k8s", audience="sts") as idp:
        host = PluginHost()
        provider = f"arn:aws:iam::123456789012:oidc-provider/{idp.issuer.removeprefix('http://')}"
        raw = {
            **BASE,
            "store": {"backend": "redis", "url": redis_url, "prefix": f"{redis_run_prefix}app:"},
            "providers": [idp.provider_config()],
            "roles": [
                {
                    "name": "pod",
                    "trust_policy": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Federated": provider},
                                "Action": "sts:AssumeRoleWithWebIdentity",
                            }
                        ],
                    },
                }
            ],
        }
        client: Client = await aiohttp_client(create_app(_config(raw, host), host=host))
        response = await client.post(
            "/",
            data={
                "Action": "AssumeRoleWithWebIdentity",
                "Version": "2011-06-15",
                "RoleArn": "arn:aws:iam::123456789012:role/pod",
                "RoleSessionName": "pod-1",
                "WebIdentityToken": idp.mint(sub="system:serviceaccount:prod:api"),
            },
        )
        text = await response.text()
        assert response.status == 200, text
        access_key = text.split("<AccessKeyId>")[1].split("<")[0]
        secret = text.split("<SecretAccessKey>")[1].split("<")[0]
        token = text.split("<SessionToken>")[1].split("<")[0]

        body = "Action=GetCallerIdentity&Version=2011-06-15"
        url = str(client.make_url("/"))
        signed = AWSRequest(
            method="POST",
            url=url,
            data=body,
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        SigV4Auth(Credentials(access_key, secret, token), "sts", "us-east-1").add_auth(signed)
        who = await client.post("/", data=body.encode(), headers=dict(signed.headers.items()))
        who_text = await who.text()
        assert who.status == 200, who_text
        assert "<Arn>arn:aws:sts::123456789012:assumed-role/pod/pod-1</Arn>" in who_text


@pytest.mark.parametrize(
    ("trusted", "forwarded", "status"),
    [
        (["127.0.0.1/32"], "203.0.113.9", 200),  # a trusted proxy vouches for the client
        (["127.0.0.1/32"], "198.51.100.1", 403),  # ... but the client is outside the trust condition
        ([], "203.0.113.9", 403),  # nobody is trusted: X-Forwarded-For is ignored
    ],
)
async def test_trust_policies_see_the_client_behind_trusted_proxies(
    aiohttp_client: Any, trusted: list[str], forwarded: str, status: int
) -> None:
    async with OIDCTestIssuer(path="/ip") as idp:
        host = PluginHost()
        provider = f"arn:aws:iam::123456789012:oidc-provider/{idp.issuer.removeprefix('http://')}"
        raw = {
            **BASE,
            "proxy": {"trusted_proxies": trusted},
            "providers": [idp.provider_config()],
            "roles": [
                {
                    "name": "office",
                    "trust_policy": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"Federated": provider},
                                "Action": "sts:AssumeRoleWithWebIdentity",
                                "Condition": {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
                            }
                        ],
                    },
                }
            ],
        }
        client: Client = await aiohttp_client(create_app(_config(raw, host), host=host))
        response = await client.post(
            "/",
            data={
                "Action": "AssumeRoleWithWebIdentity",
                "Version": "2011-06-15",
                "RoleArn": "arn:aws:iam::123456789012:role/office",
                "RoleSessionName": "laptop",
                "WebIdentityToken": idp.mint(),
            },
            headers={"X-Forwarded-For": forwarded},
        )
        assert response.status == status, await response.text()
