"""Web-identity federation end to end: stock AWS clients against a live fedgate over TCP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import subprocess
import time
import zlib
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.testing import OIDCTestIssuer, compact_jws
from tests.flows.conftest import ACCOUNT, LiveGateway, aws_cli

ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"


def _assume(gateway: LiveGateway, token: str, **kwargs: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"RoleArn": ROLE, "RoleSessionName": "ci-run", "WebIdentityToken": token}
    params.update(kwargs)
    return gateway.sts().assume_role_with_web_identity(**params)  # type: ignore[no-any-return]


def test_boto3_gets_credentials(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    response = _assume(gateway, issuer.mint(), DurationSeconds=900)
    creds = response["Credentials"]
    assert re.fullmatch(r"ASIA[A-Z2-7]{16}", creds["AccessKeyId"])
    assert len(creds["SecretAccessKey"]) == 40
    assert len(creds["SessionToken"]) > 100
    remaining = creds["Expiration"].timestamp() - time.time()
    assert 800 < remaining <= 901
    assert response["SubjectFromWebIdentityToken"] == issuer.subject
    assert response["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/ci-run"
    assert re.fullmatch(r"AROA[A-Z0-9]{17}:ci-run", response["AssumedRoleUser"]["AssumedRoleId"])
    assert response["Provider"] == issuer.issuer
    assert response["Audience"] == issuer.audience
    assert "PackedPolicySize" not in response
    assert response["ResponseMetadata"]["RequestId"]


def test_duration_is_honoured(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    response = gateway.sts().assume_role_with_web_identity(
        RoleArn=f"arn:aws:iam::{ACCOUNT}:role/long",
        RoleSessionName="long-one",
        WebIdentityToken=issuer.mint(),
        DurationSeconds=7200,
    )
    remaining = response["Credentials"]["Expiration"].timestamp() - time.time()
    assert 7100 < remaining <= 7201


def test_get_caller_identity_with_issued_credentials(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    creds = _assume(gateway, issuer.mint())["Credentials"]
    sts = gateway.sts(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    identity = sts.get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/ci-run"
    assert identity["Account"] == ACCOUNT
    assert identity["UserId"].endswith(":ci-run") and identity["UserId"].startswith("AROA")


def test_session_policy_and_policy_arns(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
        }
    )
    response = _assume(
        gateway, issuer.mint(), Policy=policy, PolicyArns=[{"arn": f"arn:aws:iam::{ACCOUNT}:policy/read"}]
    )
    assert 0 < response["PackedPolicySize"] <= 100


def test_automatic_web_identity_provider(
    gateway: LiveGateway,
    issuer: OIDCTestIssuer,
    clean_aws_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The SDK's own credential chain: AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ENDPOINT_URL_STS."""
    token_file = tmp_path / "token"
    token_file.write_text(issuer.mint())
    monkeypatch.setenv("AWS_ROLE_ARN", ROLE)
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token_file))
    monkeypatch.setenv("AWS_ROLE_SESSION_NAME", "sdk-chain")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", gateway.url)
    session = boto3.Session(botocore_session=botocore.session.Session())
    credentials = session.get_credentials()
    assert credentials is not None and credentials.method == "assume-role-with-web-identity"
    frozen = credentials.get_frozen_credentials()
    assert frozen.access_key.startswith("ASIA")
    identity = session.client("sts", config=Config(retries={"max_attempts": 1})).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/sdk-chain"


def test_aws_cli(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str], tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(issuer.mint())
    env = dict(clean_aws_env, PATH="/usr/bin:/bin")
    out = subprocess.run(
        [
            aws_cli(),
            "sts",
            "assume-role-with-web-identity",
            "--endpoint-url",
            gateway.url,
            "--role-arn",
            ROLE,
            "--role-session-name",
            "cli",
            "--web-identity-token",
            f"file://{token_file}",
            "--output",
            "json",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    creds = json.loads(out.stdout)["Credentials"]
    env.update(
        AWS_ACCESS_KEY_ID=creds["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=creds["SecretAccessKey"],
        AWS_SESSION_TOKEN=creds["SessionToken"],
    )
    out = subprocess.run(
        [aws_cli(), "sts", "get-caller-identity", "--endpoint-url", gateway.url, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(out.stdout)["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/cli"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _hs256_with_public_key(issuer: OIDCTestIssuer) -> str:
    header = {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
    unsigned = compact_jws(header, issuer.default_claims())[:-1]
    signature = hmac.new(issuer.public_pem("rsa-1"), unsigned.encode(), hashlib.sha256).digest()
    return f"{unsigned}.{_b64(signature)}"


def _jwe_bomb(issuer: OIDCTestIssuer) -> str:
    header = _b64(json.dumps({"alg": "dir", "enc": "A128GCM", "zip": "DEF", "kid": "rsa-1"}).encode())
    bomb = _b64(zlib.compress(b"\0" * 10_000_000)[:5000])
    return f"{header}..{_b64(b'x' * 12)}.{bomb}.{_b64(b'y' * 16)}"


def _forged(issuer: OIDCTestIssuer) -> str:
    head, body, sig = issuer.mint().split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["sub"] = "repo:acme/admin:ref:refs/heads/main"
    return f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"


def _attacker_key_same_kid(issuer: OIDCTestIssuer) -> str:
    attacker = OIDCTestIssuer()
    return issuer.mint(signing_key=attacker.private_key("rsa-1"), kid="rsa-1")


NEGATIVE_TOKENS: dict[str, tuple[Any, str]] = {
    "forged claims": (_forged, "InvalidIdentityToken"),
    "signed by another key with the same kid": (_attacker_key_same_kid, "InvalidIdentityToken"),
    "unknown kid": (
        lambda i: i.mint(kid="nobody-has-this-kid", signing_key=i.private_key("rsa-1")),
        "InvalidIdentityToken",
    ),
    "alg none": (lambda i: i.mint(alg="none"), "InvalidIdentityToken"),
    "HS256 with the RSA public key": (_hs256_with_public_key, "InvalidIdentityToken"),
    "ES256 header on the RSA key": (
        lambda i: i.mint(alg="ES256", kid="rsa-1", signing_key=i.private_key("ec-1")),
        "InvalidIdentityToken",
    ),
    "JWE bomb": (_jwe_bomb, "InvalidIdentityToken"),
    "expired": (
        lambda i: i.mint(exp=1_700_000_000, iat=1_699_999_000, nbf=1_699_999_000),
        "ExpiredTokenException",
    ),
    "nbf in the future": (lambda i: i.mint(nbf=4_000_000_000), "InvalidIdentityToken"),
    "wrong iss": (lambda i: i.mint(iss="https://evil.example"), "InvalidIdentityToken"),
    "wrong aud": (lambda i: i.mint(aud="someone-else"), "InvalidIdentityToken"),
    "missing sub": (lambda i: i.mint(sub=None), "InvalidIdentityToken"),
    "malformed": (lambda i: "this-is.not-a.jwt!", "InvalidIdentityToken"),
    "two parts": (lambda i: ".".join(i.mint().split(".")[:2]), "InvalidIdentityToken"),
    "oversized for the provider": (lambda i: i.mint(padding="x" * 13000), "InvalidIdentityToken"),
    "oversized for STS": (lambda i: "a" * 20001, "ValidationError"),
    "trust policy mismatch": (lambda i: i.mint(sub="repo:evil/app:ref:refs/heads/main"), "AccessDenied"),
}


@pytest.mark.parametrize("case", list(NEGATIVE_TOKENS))
def test_bad_tokens_are_rejected(
    case: str, gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    make, code = NEGATIVE_TOKENS[case]
    with pytest.raises(ClientError) as info:
        _assume(gateway, make(issuer))
    assert info.value.response["Error"]["Code"] == code
    assert "Credentials" not in info.value.response


NEGATIVE_PARAMS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown role": ({"RoleArn": f"arn:aws:iam::{ACCOUNT}:role/nope"}, "AccessDenied"),
    "role of another account": ({"RoleArn": "arn:aws:iam::999999999999:role/app"}, "AccessDenied"),
    "duration above the role maximum": ({"DurationSeconds": 7200}, "ValidationError"),
    "bad session name": ({"RoleSessionName": "no spaces allowed"}, "ValidationError"),
    "malformed session policy": (
        {"Policy": '{"Version": "2012-10-17", "Statement": "nope"}'},
        "MalformedPolicyDocument",
    ),
    "session policy not JSON": ({"Policy": "{not json"}, "MalformedPolicyDocument"),
    "session policy with an unknown operator": (
        {
            "Policy": json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "*",
                            "Resource": "*",
                            "Condition": {"StringMaybe": {"a": "b"}},
                        }
                    ],
                }
            )
        },
        "MalformedPolicyDocument",
    ),
    "unknown policy ARN": (
        {"PolicyArns": [{"arn": f"arn:aws:iam::{ACCOUNT}:policy/none"}]},
        "InvalidParameterValue",
    ),
}


@pytest.mark.parametrize("case", list(NEGATIVE_PARAMS))
def test_bad_parameters_are_rejected(
    case: str, gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    overrides, code = NEGATIVE_PARAMS[case]
    with pytest.raises(ClientError) as info:
        _assume(gateway, issuer.mint(), **overrides)
    assert info.value.response["Error"]["Code"] == code
    assert "Credentials" not in info.value.response


def test_duration_below_minimum_is_refused_before_sending(
    gateway: LiveGateway, issuer: OIDCTestIssuer
) -> None:
    sts = boto3.client(
        "sts",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as info:
        sts.assume_role_with_web_identity(
            RoleArn=ROLE, RoleSessionName="x1", WebIdentityToken=issuer.mint(), DurationSeconds=600
        )
    assert info.value.response["Error"]["Code"] == "ValidationError"


def test_missing_parameter(gateway: LiveGateway, issuer: OIDCTestIssuer) -> None:
    sts = boto3.client(
        "sts",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        config=Config(parameter_validation=False, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as info:
        sts.assume_role_with_web_identity(RoleArn=ROLE, WebIdentityToken=issuer.mint())
    assert info.value.response["Error"]["Code"] == "MissingParameter"


def test_idp_unreachable(
    gateway: LiveGateway, down_issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    with pytest.raises(ClientError) as info:
        _assume(gateway, down_issuer.mint(), RoleArn=f"arn:aws:iam::{ACCOUNT}:role/other-idp")
    assert info.value.response["Error"]["Code"] == "IDPCommunicationError"


def test_claims_the_provider_requires(
    gateway: LiveGateway, strict_issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    role = f"arn:aws:iam::{ACCOUNT}:role/strict"
    with pytest.raises(ClientError) as info:
        _assume(gateway, strict_issuer.mint(), RoleArn=role)
    assert info.value.response["Error"]["Code"] == "IDPRejectedClaim"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    ok = _assume(gateway, strict_issuer.mint(repository_owner="acme"), RoleArn=role)
    assert ok["Credentials"]["AccessKeyId"].startswith("ASIA")


def test_form_get_is_accepted(gateway: LiveGateway, issuer: OIDCTestIssuer) -> None:
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode(
        {
            "Action": "AssumeRoleWithWebIdentity",
            "Version": "2011-06-15",
            "RoleArn": ROLE,
            "RoleSessionName": "via-get",
            "WebIdentityToken": issuer.mint(),
        }
    )
    with urllib.request.urlopen(f"{gateway.url}/?{query}", timeout=10) as response:
        body = response.read().decode()
    assert "<AssumeRoleWithWebIdentityResult>" in body and "<AccessKeyId>ASIA" in body


def test_session_tags_need_tag_session_and_fit(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    tags = {"principal_tags": {"team": ["payments"]}, "transitive_tag_keys": ["team"]}
    token = issuer.mint({"https://aws.amazon.com/tags": tags})
    ok = _assume(gateway, token, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/tagged")
    assert 0 < ok["PackedPolicySize"] <= 100
    # The "long" role's trust policy does not allow sts:TagSession.
    with pytest.raises(ClientError) as info:
        _assume(gateway, token, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/long")
    assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_packed_policy_too_large(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    import secrets

    tags = {f"k{i}": [secrets.token_urlsafe(180)] for i in range(20)}
    token = issuer.mint({"https://aws.amazon.com/tags": {"principal_tags": tags}})
    with pytest.raises(ClientError) as info:
        _assume(gateway, token, RoleArn=f"arn:aws:iam::{ACCOUNT}:role/tagged")
    assert info.value.response["Error"]["Code"] == "PackedPolicyTooLarge"


def test_invalid_action_and_version(gateway: LiveGateway) -> None:
    import urllib.error
    import urllib.request

    for body, code in (
        (b"Action=DoSomethingElse&Version=2011-06-15", "InvalidAction"),
        (b"Action=GetCallerIdentity&Version=1999-01-01", "InvalidAction"),
        (b"Action=GetCallerIdentity", "MissingParameter"),
    ):
        request = urllib.request.Request(gateway.url + "/", data=body, method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        text = info.value.read().decode()
        assert f"<Code>{code}</Code>" in text and "<RequestId>" in text
        assert info.value.headers["x-amzn-RequestId"]


def test_get_caller_identity_refuses_tampering(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    creds = _assume(gateway, issuer.mint())["Credentials"]
    cases = {
        "SignatureDoesNotMatch": dict(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key="x" * 40,
            aws_session_token=creds["SessionToken"],
        ),
        "InvalidClientTokenId": dict(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"][:-8] + "AAAAAAAA",
        ),
    }
    for code, kwargs in cases.items():
        with pytest.raises(ClientError) as info:
            gateway.sts(**kwargs).get_caller_identity()
        assert info.value.response["Error"]["Code"] == code


def test_revoked_sessions_are_refused(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    from gateway import keys

    creds = _assume(gateway, issuer.mint(), RoleArn=f"arn:aws:iam::{ACCOUNT}:role/long")["Credentials"]
    sts = gateway.sts(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert sts.get_caller_identity()["Arn"].endswith("assumed-role/long/ci-run")
    service = gateway.app[keys.CREDENTIALS]
    gateway.loop.run(
        service.revoke_role_sessions(f"arn:aws:iam::{ACCOUNT}:role/long", before=time.time() + 1)
    )
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] in {"InvalidClientTokenId", "ExpiredToken"}


def test_audit_trail_records_calls_without_secrets(
    gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    token = issuer.mint()
    creds = _assume(gateway, token)["Credentials"]
    with pytest.raises(ClientError):
        _assume(gateway, issuer.mint(aud="someone-else"))
    text = gateway.audit_path.read_text()
    events = [json.loads(line) for line in text.splitlines()]
    ok = [e for e in events if e["eventName"] == "AssumeRoleWithWebIdentity" and "errorCode" not in e]
    failed = [e for e in events if e.get("errorCode") == "InvalidIdentityToken"]
    assert ok and failed
    event = ok[-1]
    assert event["userIdentity"]["type"] == "WebIdentityUser"
    assert event["requestParameters"]["roleArn"] == ROLE
    assert event["responseElements"]["credentials"]["accessKeyId"] == creds["AccessKeyId"]
    assert event["sourceIPAddress"] == "127.0.0.1" and event["userAgent"].startswith("Boto3")
    for secret in (token, creds["SecretAccessKey"], creds["SessionToken"], token.split(".")[2]):
        assert secret not in text


def test_unsigned_get_caller_identity(gateway: LiveGateway) -> None:
    from botocore import UNSIGNED

    sts = boto3.client(
        "sts",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as info:
        sts.get_caller_identity()
    assert info.value.response["Error"]["Code"] == "MissingAuthenticationToken"
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
