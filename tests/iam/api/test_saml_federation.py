"""A SAML provider created through the IAM API (CreateSAMLProvider with the IdP's metadata) is
used by the SAML plugin to verify the assertions of AssumeRoleWithSAML whose ``PrincipalArn``
names it, over HTTP with boto3 and real signed assertions; replacing its metadata
(UpdateSAMLProvider) changes which IdP it trusts; deleting it makes the same assertion fail with
the error of an unknown provider (``InvalidIdentityToken``)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

import fedgate_saml
from fedgate_saml import SAMLProviderSettings
from gateway.testing.saml import SAMLTestIdP
from tests.conftest import BackgroundLoop, config_from, running_memory_store, serve_app
from tests.iam.api.conftest import ACCOUNT

V = "2012-10-17"
ADMIN_KEY = "AKIASAMLADMIN0000001"
ADMIN_SECRET = "saml-admin-secret-" + "s" * 22
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/api-corp"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Engineers"


@pytest.fixture(scope="module")
def idp() -> Iterator[SAMLTestIdP]:
    with SAMLTestIdP() as test_idp:
        yield test_idp


@pytest.fixture(scope="module")
def other_idp() -> Iterator[SAMLTestIdP]:
    with SAMLTestIdP(entity_id="https://other-idp.example.test/saml/metadata") as test_idp:
        yield test_idp


@pytest.fixture(scope="module")
def url(background_loop: BackgroundLoop) -> Iterator[str]:
    trust = {
        "Version": V,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithSAML",
                "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
            }
        ],
    }
    config = config_from(
        {
            "account_id": ACCOUNT,
            "audit": {"sink": "none"},
            "users": [
                {
                    "name": "admin",
                    "policies": [
                        {
                            "name": "iam",
                            "document": {
                                "Version": V,
                                "Statement": [{"Effect": "Allow", "Action": "iam:*", "Resource": "*"}],
                            },
                        }
                    ],
                    "access_keys": [{"id": ADMIN_KEY, "secret": {"value": ADMIN_SECRET}}],
                }
            ],
            "roles": [{"name": "Engineers", "trust_policy": trust}],
        }
    )
    # A store that has been up a while: assertions minted just now are not refused as possibly
    # spent before it began (see tests/flows/test_saml.py).
    runner, port, _ = background_loop.run(serve_app(config, store=running_memory_store()))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


def _client(url: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        aws_access_key_id=ADMIN_KEY,
        aws_secret_access_key=ADMIN_SECRET,
    )


def _assertion(idp: SAMLTestIdP) -> str:
    return SAMLTestIdP.b64(idp.response(roles=[(ROLE, PROVIDER)]))


def _outcome(url: str, assertion: str) -> str:
    """The assumed role's ARN, or the error code."""
    try:
        answer = _client(url, "sts").assume_role_with_saml(
            RoleArn=ROLE, PrincipalArn=PROVIDER, SAMLAssertion=assertion
        )
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return str(answer["AssumedRoleUser"]["Arn"])


def _until(url: str, idp: SAMLTestIdP, done: Callable[[str], bool]) -> str:
    """Ask with a fresh assertion of ``idp`` until ``done(outcome)``: the change reaches STS when
    the replica's watcher next sees the database's revision move."""
    deadline = time.monotonic() + 20
    outcome = _outcome(url, _assertion(idp))
    while not done(outcome) and time.monotonic() < deadline:
        time.sleep(0.1)
        outcome = _outcome(url, _assertion(idp))
    return outcome


def _assumed(outcome: str) -> bool:
    return outcome.startswith("arn:")


def test_an_api_created_saml_provider_verifies_assertions(
    url: str, idp: SAMLTestIdP, other_idp: SAMLTestIdP
) -> None:
    iam = _client(url, "iam")
    assert _outcome(url, _assertion(idp)) == "InvalidIdentityToken"  # no such provider yet
    arn = iam.create_saml_provider(Name="api-corp", SAMLMetadataDocument=idp.metadata_xml().decode())[
        "SAMLProviderArn"
    ]
    assert arn == PROVIDER
    try:
        assert (
            _until(url, idp, _assumed) == f"arn:aws:sts::{ACCOUNT}:assumed-role/Engineers/alice@example.com"
        )
        answer = _client(url, "sts").assume_role_with_saml(
            RoleArn=ROLE, PrincipalArn=PROVIDER, SAMLAssertion=_assertion(idp)
        )
        assert answer["Issuer"] == idp.entity_id and answer["Credentials"]["AccessKeyId"].startswith("ASIA")
        # Another IdP's signature does not verify against this provider's metadata...
        assert _outcome(url, _assertion(other_idp)) == "InvalidIdentityToken"
        # ...until the provider's metadata is replaced by that IdP's: then only its assertions do.
        iam.update_saml_provider(SAMLProviderArn=arn, SAMLMetadataDocument=other_idp.metadata_xml().decode())
        assert _assumed(_until(url, other_idp, _assumed))
        assert _outcome(url, _assertion(idp)) == "InvalidIdentityToken"
        iam.update_saml_provider(SAMLProviderArn=arn, SAMLMetadataDocument=idp.metadata_xml().decode())
        assert _assumed(_until(url, idp, _assumed))
        kept = _assertion(idp)  # signed, unused: valid until the provider goes
    finally:
        iam.delete_saml_provider(SAMLProviderArn=arn)
    assert _until(url, idp, lambda o: not _assumed(o)) == "InvalidIdentityToken"
    assert _outcome(url, kept) == "InvalidIdentityToken"


def test_the_saml_plugin_builds_api_providers(idp: SAMLTestIdP) -> None:
    document = idp.metadata_xml().decode()
    settings = fedgate_saml.fedgate_api_provider_settings(kind="saml", name="api-corp", metadata=document)
    assert isinstance(settings, SAMLProviderSettings)
    assert settings.name == "api-corp" and settings.metadata_document == document
    assert settings.metadata_file is None and settings.metadata_url is None
    assert settings.audiences == ["https://signin.aws.amazon.com/saml", "urn:amazon:webservices"]
    assert document not in repr(settings)  # large, and no business in logs
    assert fedgate_saml.fedgate_api_provider_settings(kind="oidc", name="x", metadata=document) is None
    assert fedgate_saml.fedgate_api_provider_settings(kind="saml", name="x", metadata="") is None
    assert (
        fedgate_saml.fedgate_api_provider_settings(kind="saml", name="no spaces", metadata=document) is None
    )
