"""A live fedgate serving the IAM simulation actions, and boto3 ``iam`` clients signed with
credentials it issued through AssumeRoleWithWebIdentity."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config

from gateway.app import create_app
from gateway.config import GatewayConfig, parse_config
from gateway.plugin_host import PluginHost
from gateway.testing import OIDCTestIssuer
from gateway.web.server import GatewayRunner
from tests.conftest import BackgroundLoop

ACCOUNT = "123456789012"
V = "2012-10-17"


def _trust(issuer: OIDCTestIssuer) -> dict[str, Any]:
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer.issuer.removeprefix('http://')}"
    return {
        "Version": V,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }


def simulator_config(issuer: OIDCTestIssuer) -> GatewayConfig:
    """Roles: ``simulator`` may simulate (but not on ``secret``), ``nobody`` may not, ``target``
    and ``secret`` are principals to simulate."""
    raw: dict[str, Any] = {
        "account_id": ACCOUNT,
        "audit": {"sink": "none"},
        "providers": [issuer.provider_config()],
        "policies": [
            {
                "name": "s3-read",
                "document": {
                    "Version": V,
                    "Statement": [{"Effect": "Allow", "Action": ["s3:Get*", "s3:List*"], "Resource": "*"}],
                },
            }
        ],
        "roles": [
            {
                "name": "simulator",
                "trust_policy": _trust(issuer),
                "policies": [
                    {
                        "name": "simulate",
                        "document": {
                            "Version": V,
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": ["iam:SimulateCustomPolicy", "iam:SimulatePrincipalPolicy"],
                                    "Resource": "*",
                                },
                                {
                                    "Effect": "Deny",
                                    "Action": "iam:SimulatePrincipalPolicy",
                                    "Resource": f"arn:aws:iam::{ACCOUNT}:role/secret",
                                },
                            ],
                        },
                    }
                ],
            },
            {"name": "nobody", "trust_policy": _trust(issuer)},
            {
                "name": "target",
                "trust_policy": _trust(issuer),
                "tags": {"team": "data"},
                "policies": [
                    {
                        "name": "no-deletes",
                        "document": {
                            "Version": V,
                            "Statement": [{"Effect": "Deny", "Action": "s3:Delete*", "Resource": "*"}],
                        },
                    }
                ],
                "managed_policies": ["s3-read"],
            },
            {"name": "secret", "trust_policy": _trust(issuer), "managed_policies": ["s3-read"]},
            {
                # The CLI reference's simulate-principal-policy user "alejandro", as a role.
                "name": "alejandro",
                "trust_policy": _trust(issuer),
                "policies": [
                    {
                        "name": "Grant-Access-To-CodeCommit-ListRepo",
                        "document": {
                            "Version": V,
                            "Statement": [
                                {"Effect": "Allow", "Action": "codecommit:ListRepositories", "Resource": "*"}
                            ],
                        },
                    },
                    {
                        "name": "Dynamodb-After-Date",
                        "document": {
                            "Version": V,
                            "Statement": {
                                "Effect": "Allow",
                                "Action": "dynamodb:*",
                                "Resource": "*",
                                "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2018-08-16T12:00:00Z"}},
                            },
                        },
                    },
                ],
            },
        ],
    }
    host = PluginHost()
    return parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())


async def _start(config: GatewayConfig) -> tuple[web.AppRunner, str]:
    runner = GatewayRunner(create_app(config))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture(scope="module")
def iam_issuer(background_loop: BackgroundLoop) -> Iterator[OIDCTestIssuer]:
    """A live OIDC issuer the gateway trusts."""
    idp = OIDCTestIssuer(path="/iam", audience="sts.amazonaws.com", subject="repo:acme/app")
    background_loop.run(idp.__aenter__())
    yield idp
    background_loop.run(idp.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def iam_url(background_loop: BackgroundLoop, iam_issuer: OIDCTestIssuer) -> Iterator[str]:
    """The URL of a live gateway serving STS and IAM on one endpoint."""
    runner, url = background_loop.run(_start(simulator_config(iam_issuer)))
    yield url
    background_loop.run(runner.cleanup())


IamFactory = Callable[..., Any]


@pytest.fixture(scope="module")
def iam_client(iam_url: str, iam_issuer: OIDCTestIssuer) -> IamFactory:
    """``iam_client(role="simulator", **assume_kwargs)``: a boto3 ``iam`` client over TCP, signed
    with credentials from AssumeRoleWithWebIdentity for ``role``."""

    def make(role: str = "simulator", **assume: Any) -> Any:
        config = Config(retries={"max_attempts": 1})
        sts = boto3.client(
            "sts",
            endpoint_url=iam_url,
            region_name="us-east-1",
            config=config,
            aws_access_key_id="unused",
            aws_secret_access_key="unused",
        )
        creds = sts.assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
            RoleSessionName="sim",
            WebIdentityToken=iam_issuer.mint(),
            **assume,
        )["Credentials"]
        return boto3.client(
            "iam",
            endpoint_url=iam_url,
            region_name="us-east-1",
            config=config,
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )

    return make
