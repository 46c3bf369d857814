"""A proxy denial ends with an encoded authorization message that the aws CLI decodes.

The s3-app session is refused by the proxy (implicitly, and explicitly by a Deny statement); the
blob at the end of the S3 error's message is read back with ``aws sts
decode-authorization-message`` by a session allowed ``sts:DecodeAuthorizationMessage``, and says
which statement decided, on which action and resource, with which condition keys.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.iam.denial import MARKER
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop
from tests.flows.conftest import decode_with_cli
from tests.proxy.conftest import (
    ACCOUNT,
    BUCKET,
    ROLE,
    Moto,
    ProxyGateway,
    assume_role,
    proxy_config,
    s3_client,
    s3_policy,
    serve_proxy,
)

DECODER = f"arn:aws:iam::{ACCOUNT}:role/decoder"


def _federated(issuer: OIDCTestIssuer) -> dict[str, Any]:
    provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/" + issuer.issuer.removeprefix("http://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }


@pytest.fixture(scope="module")
def gateway(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    moto: Moto,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyGateway]:
    """The proxy of tests/proxy, plus a role that may decode authorization messages."""
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    decode = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sts:DecodeAuthorizationMessage", "Resource": "*"}],
    }
    roles = [
        {
            "name": "s3-app",
            "trust_policy": _federated(issuer),
            "policies": [{"name": "s3", "document": s3_policy()}],
            "tags": {"team": "storage"},
        },
        {
            "name": "decoder",
            "trust_policy": _federated(issuer),
            "policies": [{"name": "decode", "document": decode}],
        },
    ]
    config = proxy_config(issuer, moto.url, audit_path, roles=roles)
    with serve_proxy(background_loop, config, audit_path) as gateway:
        yield gateway


def _session(gateway: ProxyGateway, issuer: OIDCTestIssuer, role: str) -> dict[str, str]:
    """The credentials of a ``role`` session as the aws CLI's environment variables."""
    return {key.upper(): value for key, value in assume_role(gateway, issuer, role, "denied").items()}


def _boto(env: dict[str, str]) -> dict[str, str]:
    return {
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
        "aws_session_token": env["AWS_SESSION_TOKEN"],
    }


def _blob(exc: pytest.ExceptionInfo[ClientError]) -> str:
    error = exc.value.response["Error"]
    assert error["Code"] == "AccessDenied"
    message = error["Message"]
    assert MARKER in message
    return str(message.rpartition(MARKER)[2])


def _conditions(decoded: dict[str, Any]) -> dict[str, list[str]]:
    return {
        item["key"]: [v["value"] for v in item["values"]["items"]]
        for item in decoded["context"]["conditions"]["items"]
    }


def test_the_cli_decodes_why_the_proxy_denied(
    gateway: ProxyGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str], tmp_path: Path
) -> None:
    app = _session(gateway, issuer, ROLE)
    decoder = _session(gateway, issuer, DECODER)
    s3 = s3_client(gateway, _boto(app))

    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="private/secret.txt")
    implicit = decode_with_cli(gateway.sts_url, decoder, _blob(exc), clean_aws_env)
    assert implicit["allowed"] is False and implicit["explicitDeny"] is False
    assert implicit["matchedStatements"] == {"items": []}
    assert implicit["failures"] == {"items": []}
    context = implicit["context"]
    assert context["action"] == "s3:GetObject"
    assert context["resource"] == f"arn:aws:s3:::{BUCKET}/private/secret.txt"
    assert context["principal"]["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/s3-app/denied"
    assert context["principal"]["id"].endswith(":denied")
    conditions = _conditions(implicit)
    assert conditions["aws:PrincipalTag/team"] == ["storage"]
    assert conditions["aws:PrincipalArn"] == [ROLE]
    # The audit trail tells the denial without the sealed blob (the event says how it was decided).
    [event] = [
        e
        for e in map(json.loads, gateway.audit_path.read_text().splitlines())
        if e.get("errorCode") == "AccessDenied" and e["eventName"] == "GetObject"
    ]
    assert "is not authorized to perform: s3:GetObject" in event["errorMessage"]
    assert MARKER not in event["errorMessage"]
    # Nothing that signed the request is in the message.
    text = json.dumps(implicit)
    assert app["AWS_SESSION_TOKEN"] not in text and app["AWS_SECRET_ACCESS_KEY"] not in text

    with pytest.raises(ClientError) as exc:
        s3.delete_object(Bucket=BUCKET, Key="public/keep/kept.txt")
    explicit = decode_with_cli(gateway.sts_url, decoder, _blob(exc), clean_aws_env)
    assert explicit["allowed"] is False and explicit["explicitDeny"] is True
    [statement] = explicit["matchedStatements"]["items"]
    assert statement["statementId"] == "KeepIsKept" and statement["effect"] == "DENY"
    assert statement["policy"] == "s3-app/s3" and statement["statementIndex"] == 3  # the policy's 4th
    assert statement["actions"]["items"] == [{"value": "s3:DeleteObject"}]
    assert statement["resources"]["items"] == [
        {"value": f"arn:aws:s3:::{BUCKET}/public/keep/*"},
        {"value": f"arn:aws:s3:::{BUCKET}/public/*/kept-*"},
    ]


def test_decoding_needs_the_permission_and_a_message_fedgate_sealed(
    gateway: ProxyGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    app = _session(gateway, issuer, ROLE)
    s3 = s3_client(gateway, _boto(app))
    with pytest.raises(ClientError) as exc:
        s3.get_object(Bucket=BUCKET, Key="private/secret.txt")
    blob = _blob(exc)

    def decode(creds: dict[str, str], message: str) -> tuple[str, str]:
        sts = boto3.client(
            "sts",
            endpoint_url=gateway.sts_url,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
            **_boto(creds),
        )
        with pytest.raises(ClientError) as caught:
            sts.decode_authorization_message(EncodedMessage=message)
        error = caught.value.response["Error"]
        return error["Code"], error["Message"]

    code, message = decode(app, blob)  # s3-app may not decode
    assert code == "AccessDenied" and "sts:DecodeAuthorizationMessage" in message
    decoder = _session(gateway, issuer, DECODER)
    tampered = blob[:-2] + ("A" if blob[-2] != "A" else "B") + blob[-1]
    for foreign in (tampered, app["AWS_SESSION_TOKEN"], "not-a-message", "A" * 7000):
        assert decode(decoder, foreign)[0] == "InvalidAuthorizationMessageException"
