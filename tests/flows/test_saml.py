"""SAML federation end to end: boto3's assume_role_with_saml against live gateways over TCP."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import redis
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.testing.redis import backdate_generation
from gateway.testing.saml import SESSION_DURATION_ATTR, SAMLTestIdP
from tests.conftest import BackgroundLoop, config_from, running_memory_store, serve_app
from tests.flows.conftest import ACCOUNT
from tests.plugins.fedgate_saml.conftest import restamped

PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
ENGINEERS = f"arn:aws:iam::{ACCOUNT}:role/Engineers"
ADMINS = f"arn:aws:iam::{ACCOUNT}:role/Admins"


def _trust(**condition: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithSAML",
                "Condition": {
                    "StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml", **condition}
                },
            }
        ],
    }


def _raw(idp: SAMLTestIdP, **store: Any) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "audit": {"sink": "none"},
        "store": store or {"backend": "memory"},
        "providers": [idp.provider_config(name="corp")],
        "roles": [
            {"name": "Engineers", "max_session_duration": 7200, "trust_policy": _trust()},
            {"name": "Admins", "trust_policy": _trust(**{"saml:sub": "root@example.com"})},
        ],
    }


@pytest.fixture(scope="module")
def idp() -> Iterator[SAMLTestIdP]:
    with SAMLTestIdP() as test_idp:
        yield test_idp


def _serve(loop: BackgroundLoop, raw: dict[str, Any]) -> tuple[web.AppRunner, str]:
    # A gateway that has been up for a while: its store does not refuse assertions minted just now
    # (a fresh one would, as possibly spent before it began; see tests/flows/test_store_faults.py).
    store = running_memory_store() if raw["store"]["backend"] == "memory" else None
    runner, port, _ = loop.run(serve_app(config_from(raw), store=store))
    return runner, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def url(background_loop: BackgroundLoop, idp: SAMLTestIdP) -> Iterator[str]:
    runner, base = _serve(background_loop, _raw(idp))
    yield base
    background_loop.run(runner.cleanup())


def _sts(url: str, **credentials: str) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **credentials,
    )


def _assertion(idp: SAMLTestIdP, **kwargs: Any) -> str:
    kwargs.setdefault("roles", [(ENGINEERS, PROVIDER), (PROVIDER, ADMINS)])  # either order
    return SAMLTestIdP.b64(idp.response(**kwargs))


def _assume(url: str, assertion: str, role: str = ENGINEERS, **kwargs: Any) -> dict[str, Any]:
    response: dict[str, Any] = _sts(url).assume_role_with_saml(
        RoleArn=role, PrincipalArn=PROVIDER, SAMLAssertion=assertion, **kwargs
    )
    return response


def test_boto3_assume_role_with_saml(url: str, idp: SAMLTestIdP) -> None:
    response = _assume(url, _assertion(idp, sign_assertion=True, sign_response=False), DurationSeconds=3600)
    creds = response["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["SecretAccessKey"]) == 40
    assert (
        response["AssumedRoleUser"]["Arn"]
        == f"arn:aws:sts::{ACCOUNT}:assumed-role/Engineers/alice@example.com"
    )
    assert response["Subject"] == "alice@example.com"
    assert response["SubjectType"] == "persistent"
    assert response["Issuer"] == idp.entity_id
    assert response["Audience"] == "https://signin.aws.amazon.com/saml"
    expected = base64.b64encode(hashlib.sha1(f"{idp.entity_id}{ACCOUNT}/corp".encode()).digest()).decode()
    assert response["NameQualifier"] == expected
    who = _sts(
        url,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    ).get_caller_identity()
    assert who["Arn"] == response["AssumedRoleUser"]["Arn"]


def test_audience_is_the_recipient(url: str, idp: SAMLTestIdP) -> None:
    """AssumeRoleWithSAML (STS API Reference), Response Elements, ``Audience``: "The value of the
    Recipient attribute of the SubjectConfirmationData element of the SAML assertion." Here the
    assertion's AudienceRestriction names ``urn:amazon:webservices`` and its Recipient is AWS's
    sign-in URL: botocore reads the Recipient back.
    """
    response = _assume(url, _assertion(idp, sp_entity_id="urn:amazon:webservices"))
    assert response["Audience"] == "https://signin.aws.amazon.com/saml"


def test_session_duration_attribute_caps_the_session(url: str, idp: SAMLTestIdP) -> None:
    assertion = _assertion(idp, attributes={SESSION_DURATION_ATTR: ["1800"]})
    expiration = _assume(url, assertion, DurationSeconds=7200)["Credentials"]["Expiration"]
    assert 1700 < expiration.timestamp() - time.time() <= 1801


CASES = {
    "replayed": ("replay", "InvalidIdentityToken"),
    "role not granted by the IdP": ("role", "AccessDenied"),
    "trust policy condition on saml:sub": ("admins", "AccessDenied"),
    "unsigned": ("unsigned", "InvalidIdentityToken"),
    "duration above the role maximum": ("duration", "ValidationError"),
    "unknown provider": ("provider", "InvalidIdentityToken"),
    "issued more than five minutes ago": ("stale", "ExpiredTokenException"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refusals(case: str, url: str, idp: SAMLTestIdP) -> None:
    kind, code = CASES[case]
    assertion = _assertion(idp, sign_response=kind != "unsigned")
    with pytest.raises(ClientError) as info:
        if kind == "replay":
            _assume(url, assertion)
            _assume(url, assertion)
        elif kind == "role":
            _assume(url, _assertion(idp, roles=[(ADMINS, PROVIDER)]))
        elif kind == "admins":
            _assume(url, assertion, role=ADMINS)
        elif kind == "stale":  # NotOnOrAfter is still an hour away
            unsigned = idp.response(roles=[(ENGINEERS, PROVIDER)], sign_response=False)
            _assume(url, SAMLTestIdP.b64(restamped(idp, unsigned, issued_ago=400, valid_for=3600)))
        elif kind == "duration":
            _assume(url, assertion, DurationSeconds=10800)
        elif kind == "provider":
            _sts(url).assume_role_with_saml(
                RoleArn=ENGINEERS,
                PrincipalArn=f"arn:aws:iam::{ACCOUNT}:saml-provider/nope",
                SAMLAssertion=assertion,
            )
        else:
            _assume(url, assertion)
    assert info.value.response["Error"]["Code"] == code
    assert "Credentials" not in info.value.response


def test_replay_refused_across_replicas_sharing_redis(
    background_loop: BackgroundLoop, idp: SAMLTestIdP, redis_url: str, redis_prefix: str
) -> None:
    store = {"backend": "redis", "url": redis_url, "prefix": redis_prefix}
    with redis.Redis.from_url(redis_url) as client:
        backdate_generation(client, redis_prefix, time.time() - 3600)
    first, url_a = _serve(background_loop, _raw(idp, **store))
    second, url_b = _serve(background_loop, _raw(idp, **store))
    try:
        assertion = _assertion(idp)
        assert _assume(url_a, assertion)["Credentials"]["AccessKeyId"].startswith("ASIA")
        with pytest.raises(ClientError) as info:
            _assume(url_b, assertion)
        assert info.value.response["Error"]["Code"] == "InvalidIdentityToken"
    finally:
        background_loop.run(first.cleanup())
        background_loop.run(second.cleanup())
