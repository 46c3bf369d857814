"""A live fedgate serving the IAM API over TCP (SQLite in memory), boto3 ``iam`` clients signed with
sessions it issued for roles of different powers, and the audit events it emitted."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway import hookimpl
from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.plugin_host import PluginHost
from gateway.testing import OIDCTestIssuer
from gateway.web.server import GatewayRunner
from tests.conftest import BackgroundLoop
from tests.iam.conftest import ACCOUNT, V, _trust

__all__ = ["ACCOUNT", "Api", "AuditRecorder", "error_of"]


def error_of(excinfo: pytest.ExceptionInfo[ClientError]) -> tuple[str, int, str]:
    """``(code, HTTP status, message)`` of the error a client raised."""
    response = excinfo.value.response
    return (
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


class AuditRecorder:
    """An audit sink keeping every event in memory (the schema observer checks each one)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    @hookimpl
    def fedgate_audit_event(self, event: Mapping[str, Any]) -> None:
        self.events.append(dict(event))

    def named(self, name: str) -> list[dict[str, Any]]:
        """The events of action ``name``, oldest first."""
        return [e for e in self.events if e["eventName"] == name]


def _allow(*actions: str, resource: str = "*") -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}]}


def api_config(issuer: OIDCTestIssuer) -> GatewayConfig:
    """Roles: ``admin`` may do any IAM action, ``reader`` may Get and List, ``team`` may manage
    users under ``/team/`` only, ``nobody`` nothing; ``configured`` and ``s3-read`` are a config role
    and policy."""
    trust = _trust(issuer)
    raw: dict[str, Any] = {
        "account_id": ACCOUNT,
        "audit": {"sink": "none"},
        "providers": [issuer.provider_config()],
        "policies": [{"name": "s3-read", "document": _allow("s3:Get*")}],
        "roles": [
            {
                "name": "admin",
                "trust_policy": trust,
                "policies": [{"name": "all", "document": _allow("iam:*")}],
            },
            {
                "name": "reader",
                "trust_policy": trust,
                "policies": [{"name": "read", "document": _allow("iam:Get*", "iam:List*")}],
            },
            {
                "name": "team",
                "trust_policy": trust,
                "policies": [
                    {
                        "name": "team-users",
                        "document": _allow("iam:*", resource=f"arn:aws:iam::{ACCOUNT}:user/team/*"),
                    }
                ],
            },
            {"name": "nobody", "trust_policy": trust},
            {"name": "configured", "trust_policy": trust, "managed_policies": ["s3-read"]},
        ],
    }
    host = PluginHost()
    return parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())


@dataclass(frozen=True)
class Api:
    """The live gateway: its URL, the audit events it emitted, and clients for its roles."""

    url: str
    audit: AuditRecorder
    issuer: OIDCTestIssuer
    app: web.Application
    loop: BackgroundLoop

    def credentials(self, role: str = "admin") -> dict[str, str]:
        """Session credentials for ``role`` from AssumeRoleWithWebIdentity."""
        sts = boto3.client(
            "sts",
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
            aws_access_key_id="unused",
            aws_secret_access_key="unused",
        )
        creds = sts.assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
            RoleSessionName="api-test",
            WebIdentityToken=self.issuer.mint(),
        )["Credentials"]
        return {k: creds[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken")}

    def client(self, role: str = "admin") -> Any:
        """A boto3 ``iam`` client over TCP, signed with a session of ``role``."""
        creds = self.credentials(role)
        return boto3.client(
            "iam",
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )


@pytest.fixture(scope="module")
def api(background_loop: BackgroundLoop, iam_issuer: OIDCTestIssuer) -> Iterator[Api]:
    """A gateway of this module's own, so each module starts from an empty database."""
    recorder = AuditRecorder()

    async def start() -> tuple[GatewayRunner, str]:
        runner = GatewayRunner(create_app(api_config(iam_issuer), host=PluginHost(builtins=[recorder])))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"

    runner, url = background_loop.run(start())
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("AWS_EC2_METADATA_DISABLED", "true")  # clients never look for other credentials
            yield Api(url, recorder, iam_issuer, runner.app, background_loop)
    finally:
        background_loop.run(runner.cleanup())


@pytest.fixture(scope="module")
def admin(api: Api) -> Any:
    """An ``iam`` client of the ``admin`` role."""
    return api.client("admin")
