"""An OIDC provider created through the IAM API becomes an identity provider STS routes tokens to
(AssumeRoleWithWebIdentity), and stops being one when it is deleted; a role created through the
API, trusting it, is assumable and its inline policy governs the session.

The issuer serves https with a test CA on loopback. The gateway runs the real OIDC plugin; a test
plugin (``tryfirst``) answers ``fedgate_api_provider_settings`` with the OIDC plugin's own settings
plus that CA as ``ca_file`` and loopback allowed, which a production issuer (a public CA, a public
address) does not need. The OIDC plugin's
own answer to the hook is tested below too.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

import fedgate_oidc
from fedgate_oidc import OIDCProviderSettings
from gateway import hookimpl
from gateway.app import create_app
from gateway.config import ProviderSettings, parse_config
from gateway.plugin_host import PluginHost
from gateway.testing import OIDCTestIssuer
from gateway.testing.tls import TestCA
from gateway.web.server import GatewayRunner
from tests.conftest import BackgroundLoop
from tests.iam.conftest import ACCOUNT, V, _trust

ALLOW_IAM = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}]}


class TrustTestCA:
    """Builds API-created OIDC providers as the OIDC plugin does, trusting the test CA."""

    def __init__(self, ca: TestCA) -> None:
        self.ca = ca

    @hookimpl(tryfirst=True)
    def fedgate_api_provider_settings(
        self, kind: str, issuer: str, audiences: Sequence[str]
    ) -> ProviderSettings | None:
        settings = fedgate_oidc.fedgate_api_provider_settings(kind=kind, issuer=issuer, audiences=audiences)
        if settings is None:
            return None
        # The test issuer listens on loopback, which the stock settings never ask (no SSRF).
        return settings.model_copy(update={"ca_file": self.ca.cert_file, "public_network_only": False})


@pytest.fixture(scope="module")
def tls_ca() -> TestCA:
    return TestCA()


@pytest.fixture(scope="module")
def tls_issuer(background_loop: BackgroundLoop, tls_ca: TestCA) -> Iterator[OIDCTestIssuer]:
    idp = OIDCTestIssuer(
        path="/fed", audience="sts.amazonaws.com", subject="repo:acme/deploy", tls=tls_ca.server_context()
    )
    background_loop.run(idp.__aenter__())
    yield idp
    background_loop.run(idp.__aexit__(None, None, None))


@pytest.fixture(scope="module")
def gateway(
    background_loop: BackgroundLoop, iam_issuer: OIDCTestIssuer, tls_issuer: OIDCTestIssuer, tls_ca: TestCA
) -> Iterator[str]:
    provider_arn = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{tls_issuer.issuer.removeprefix('https://')}"
    raw: dict[str, Any] = {
        "account_id": ACCOUNT,
        "audit": {"sink": "none"},
        "providers": [iam_issuer.provider_config()],
        "roles": [
            {
                "name": "admin",
                "trust_policy": _trust(iam_issuer),
                "policies": [{"name": "all", "document": ALLOW_IAM}],
            },
            {
                "name": "deployer",
                "trust_policy": {
                    "Version": V,
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": provider_arn},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                        }
                    ],
                },
            },
        ],
    }
    host = PluginHost(builtins=[TrustTestCA(tls_ca)])
    config = parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())

    async def start() -> tuple[GatewayRunner, str]:
        runner = GatewayRunner(create_app(config, host=host))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"

    runner, url = background_loop.run(start())
    yield url
    background_loop.run(runner.cleanup())


def _sts(url: str) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        aws_access_key_id="unused",
        aws_secret_access_key="unused",
    )


def _assume(url: str, issuer: OIDCTestIssuer, role: str) -> dict[str, Any]:
    result: dict[str, Any] = _sts(url).assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}", RoleSessionName="fed", WebIdentityToken=issuer.mint()
    )
    return result


def _admin(url: str, issuer: OIDCTestIssuer) -> Any:
    creds = _assume(url, issuer, "admin")["Credentials"]
    return boto3.client(
        "iam",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _outcome(url: str, issuer: OIDCTestIssuer) -> str:
    try:
        return str(_assume(url, issuer, "deployer")["AssumedRoleUser"]["Arn"])
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])


def _until(url: str, issuer: OIDCTestIssuer, done: Callable[[str], bool]) -> str:
    """Ask until ``done(outcome)``: the change reaches STS when the watcher next checks."""
    deadline = time.monotonic() + 20
    outcome = _outcome(url, issuer)
    while not done(outcome) and time.monotonic() < deadline:
        time.sleep(0.1)
        outcome = _outcome(url, issuer)
    return outcome


def test_an_api_created_provider_is_used_by_sts(
    gateway: str, iam_issuer: OIDCTestIssuer, tls_issuer: OIDCTestIssuer
) -> None:
    assert _outcome(gateway, tls_issuer) == "InvalidIdentityToken"  # no such provider yet
    admin = _admin(gateway, iam_issuer)
    arn = admin.create_open_id_connect_provider(Url=tls_issuer.issuer, ClientIDList=["sts.amazonaws.com"])[
        "OpenIDConnectProviderArn"
    ]
    assumed = _until(gateway, tls_issuer, lambda o: o.startswith("arn:"))
    assert assumed == f"arn:aws:sts::{ACCOUNT}:assumed-role/deployer/fed"
    # A token for an audience the provider does not list is refused.
    admin.remove_client_id_from_open_id_connect_provider(
        OpenIDConnectProviderArn=arn, ClientID="sts.amazonaws.com"
    )
    admin.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="someone-else")
    assert _until(gateway, tls_issuer, lambda o: not o.startswith("arn:")) == "InvalidIdentityToken"
    admin.add_client_id_to_open_id_connect_provider(
        OpenIDConnectProviderArn=arn, ClientID="sts.amazonaws.com"
    )
    assert _until(gateway, tls_issuer, lambda o: o.startswith("arn:")).startswith("arn:")
    admin.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    assert _until(gateway, tls_issuer, lambda o: not o.startswith("arn:")) == "InvalidIdentityToken"


def test_the_oidc_plugin_builds_api_providers() -> None:
    settings = fedgate_oidc.fedgate_api_provider_settings(
        kind="oidc", issuer="https://token.example.com/ci", audiences=["sts.amazonaws.com"]
    )
    assert isinstance(settings, OIDCProviderSettings)
    assert settings.issuer == "https://token.example.com/ci" and settings.audiences == ["sts.amazonaws.com"]
    assert settings.algorithms == ["RS256"]
    assert settings.public_network_only  # an IAM user's URL: never fetched from a non-public address
    assert (
        fedgate_oidc.fedgate_api_provider_settings(kind="oidc", issuer="https://t.example.com", audiences=[])
        is None
    )
    assert (
        fedgate_oidc.fedgate_api_provider_settings(
            kind="saml", issuer="https://t.example.com", audiences=["a"]
        )
        is None
    )


def test_an_api_created_role_is_assumable_with_an_api_created_provider(
    gateway: str, iam_issuer: OIDCTestIssuer, tls_issuer: OIDCTestIssuer
) -> None:
    admin = _admin(gateway, iam_issuer)
    provider = admin.create_open_id_connect_provider(
        Url=tls_issuer.issuer, ClientIDList=["sts.amazonaws.com"]
    )["OpenIDConnectProviderArn"]
    trust = {
        "Version": V,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }
    admin.create_role(RoleName="api-deployer", AssumeRolePolicyDocument=json.dumps(trust))
    allow = {"Version": V, "Statement": [{"Effect": "Allow", "Action": "iam:GetRole", "Resource": "*"}]}
    admin.put_role_policy(RoleName="api-deployer", PolicyName="read", PolicyDocument=json.dumps(allow))
    try:
        deadline = time.monotonic() + 20  # until the watcher has rebuilt the catalog and providers
        while True:
            try:
                creds = _assume(gateway, tls_issuer, "api-deployer")["Credentials"]
                break
            except ClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        session = boto3.client(
            "iam",
            endpoint_url=gateway,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
        )
        # The session is decided by the catalog current at each call: once the replica has the
        # role's inline policy (it may have learnt of the role a revision before), GetRole is allowed.
        while True:
            try:
                assert session.get_role(RoleName="api-deployer")["Role"]["RoleName"] == "api-deployer"
                break
            except ClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with pytest.raises(ClientError) as excinfo:
            session.list_roles()  # not allowed by its inline policy
        assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    finally:
        admin.delete_role_policy(RoleName="api-deployer", PolicyName="read")
        admin.delete_role(RoleName="api-deployer")
        admin.delete_open_id_connect_provider(OpenIDConnectProviderArn=provider)
