"""A session assumed with MFA through the reverse proxy: boto3 S3 -> fedgate -> moto, allowed by a
policy on ``aws:MultiFactorAuthPresent``; the same policy denies a session assumed without MFA, and
the decoded denial says why."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError

from gateway.iam.denial import MARKER
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop
from tests.flows.conftest import credentials_of
from tests.flows.mfa import ADMIN_USER, EXTERNAL_ID, MFA_REQUIRED, MFA_ROLES, NO_MFA, Replica, mfa_user
from tests.proxy.conftest import BUCKET, Moto, ProxyGateway, proxy_config, s3_client, serve_proxy


@pytest.fixture(scope="module")
def gateway(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    moto: Moto,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ProxyGateway]:
    """fedgate proxying host ``localhost`` to moto, with the MFA roles and an admin user."""
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    config = proxy_config(issuer, moto.url, audit_path, users=[ADMIN_USER], roles=MFA_ROLES)
    with serve_proxy(background_loop, config, audit_path) as gateway:
        yield gateway


def test_the_proxy_sees_the_mfa_a_session_was_assumed_with(
    gateway: ProxyGateway, moto: Moto, clean_aws_env: dict[str, str]
) -> None:
    moto.client().put_object(Bucket=BUCKET, Key="mfa/report.txt", Body=b"for MFA sessions")
    endpoint = Replica(gateway.sts_url)
    user = mfa_user(endpoint.client("iam"), "ivan")
    sts = endpoint.client("sts", user.key, user.secret)
    with_mfa = credentials_of(
        sts.assume_role(
            RoleArn=MFA_REQUIRED,
            RoleSessionName="with-mfa",
            ExternalId=EXTERNAL_ID,
            SerialNumber=user.serial,
            TokenCode=user.app.code(),
        )
    )
    body = s3_client(gateway, with_mfa).get_object(Bucket=BUCKET, Key="mfa/report.txt")["Body"].read()
    assert body == b"for MFA sessions"

    without = credentials_of(sts.assume_role(RoleArn=NO_MFA, RoleSessionName="without"))
    with pytest.raises(ClientError) as excinfo:
        s3_client(gateway, without).get_object(Bucket=BUCKET, Key="mfa/report.txt")
    error = excinfo.value.response["Error"]
    assert error["Code"] == "AccessDenied" and MARKER in error["Message"]
    decoder = endpoint.client(
        "sts", without["aws_access_key_id"], without["aws_secret_access_key"], without["aws_session_token"]
    )
    blob = error["Message"].rpartition(MARKER)[2]
    decoded = json.loads(decoder.decode_authorization_message(EncodedMessage=blob)["DecodedMessage"])
    assert decoded["context"]["action"] == "s3:GetObject"
    conditions = {item["key"]: item["values"]["items"] for item in decoded["context"]["conditions"]["items"]}
    assert conditions["aws:MultiFactorAuthPresent"] == [{"value": "false"}]
