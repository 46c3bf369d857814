"""A live fedgate on a real TCP port, trusting a live OIDC issuer, for boto3 and the aws CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config

from gateway.config import GatewayConfig
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop, config_from, serve_app

ACCOUNT = "123456789012"


@dataclass
class LiveGateway:
    """A running gateway: its URL, application, and the audit file it writes."""

    url: str
    app: web.Application
    audit_path: Path
    loop: BackgroundLoop

    def sts(self, **credentials: str) -> Any:
        """A boto3 STS client for this gateway (no retries, so each call is one request)."""
        return boto3.client(
            "sts",
            endpoint_url=self.url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
            **credentials,
        )


def credentials_of(response: dict[str, Any]) -> dict[str, str]:
    """The ``Credentials`` of an STS answer as boto3 client arguments."""
    c = response["Credentials"]
    return {
        "aws_access_key_id": c["AccessKeyId"],
        "aws_secret_access_key": c["SecretAccessKey"],
        "aws_session_token": c["SessionToken"],
    }


def provider_arn(issuer: OIDCTestIssuer) -> str:
    """The provider ARN fedgate gives ``issuer``."""
    return f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer.issuer.removeprefix('http://')}"


def trust(issuer: OIDCTestIssuer, *, actions: list[str] | None = None, **conditions: Any) -> dict[str, Any]:
    """A trust policy for ``issuer`` with the given conditions."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn(issuer)},
        "Action": actions or "sts:AssumeRoleWithWebIdentity",
    }
    if conditions:
        statement["Condition"] = conditions
    return {"Version": "2012-10-17", "Statement": [statement]}


def gateway_config(
    issuer: OIDCTestIssuer, down: OIDCTestIssuer, strict: OIDCTestIssuer, audit_path: Path, **extra: Any
) -> GatewayConfig:
    """The configuration the end-to-end tests run with."""
    key = issuer.issuer.removeprefix("http://")
    raw: dict[str, Any] = {
        "account_id": ACCOUNT,
        "audit": {"sink": "file", "path": str(audit_path)},
        "providers": [
            issuer.provider_config(max_token_bytes=12000, jwks_refetch_min_interval=0),
            down.provider_config(),
            strict.provider_config(require_claims=["repository_owner"]),
        ],
        "policies": [
            {
                "name": "read",
                "document": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
                },
            }
        ],
        "roles": [
            {
                "name": "app",
                "trust_policy": trust(
                    issuer,
                    StringEquals={f"{key}:aud": issuer.audience},
                    StringLike={f"{key}:sub": "repo:acme/*"},
                ),
                "managed_policies": ["read"],
            },
            {
                "name": "long",
                "max_session_duration": 7200,
                "trust_policy": trust(issuer),
            },
            {
                "name": "tagged",
                "trust_policy": trust(issuer, actions=["sts:AssumeRoleWithWebIdentity", "sts:TagSession"]),
            },
            {"name": "other-idp", "trust_policy": trust(down)},
            {"name": "strict", "trust_policy": trust(strict)},
        ],
    }
    raw.update(extra)
    return config_from(raw)


@pytest.fixture(scope="module")
def issuer(background_loop: BackgroundLoop) -> Iterator[OIDCTestIssuer]:
    """A live OIDC issuer at a GitHub-Actions-like path."""
    idp = OIDCTestIssuer(
        path="/gha", audience="sts.amazonaws.com", subject="repo:acme/app:ref:refs/heads/main"
    )
    background_loop.run(idp.__aenter__())
    yield idp
    background_loop.run(idp.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def down_issuer(background_loop: BackgroundLoop) -> Iterator[OIDCTestIssuer]:
    """A second issuer whose JWKS endpoint fails: IDPCommunicationError."""
    idp = OIDCTestIssuer(path="/down")
    background_loop.run(idp.__aenter__())
    idp.fail_jwks = 503
    yield idp
    background_loop.run(idp.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def strict_issuer(background_loop: BackgroundLoop) -> Iterator[OIDCTestIssuer]:
    """A third issuer whose provider requires a repository_owner claim: IDPRejectedClaim."""
    idp = OIDCTestIssuer(path="/strict")
    background_loop.run(idp.__aenter__())
    yield idp
    background_loop.run(idp.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def gateway(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    down_issuer: OIDCTestIssuer,
    strict_issuer: OIDCTestIssuer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveGateway]:
    """fedgate serving the test configuration on 127.0.0.1."""
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    config = gateway_config(issuer, down_issuer, strict_issuer, audit_path)
    runner, port, app = background_loop.run(serve_app(config))
    url = f"http://127.0.0.1:{port}"
    yield LiveGateway(url=url, app=app, audit_path=audit_path, loop=background_loop)
    background_loop.run(runner.cleanup())


def aws_cli() -> str:
    """The aws CLI installed beside this Python."""
    path = Path(sys.executable).with_name("aws")
    if not path.exists():
        pytest.fail(f"the aws CLI is not installed at {path}; run `make install`", pytrace=False)
    return str(path)


def decode_with_cli(url: str, env: dict[str, str], blob: str, clean_env: dict[str, str]) -> dict[str, Any]:
    """``aws sts decode-authorization-message`` as a user runs it; the DecodedMessage, parsed."""
    command = [aws_cli(), "sts", "decode-authorization-message", "--endpoint-url", url]
    command += ["--encoded-message", blob, "--output", "json"]
    out = subprocess.run(
        command,
        env={**clean_env, **env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    decoded: dict[str, Any] = json.loads(json.loads(out.stdout)["DecodedMessage"])
    return decoded
