"""AssumeRole end to end: a web-identity session chains through roles with boto3 over TCP.

The chain starts with AssumeRoleWithWebIdentity (the token carries session tags, one of them
transitive), assumes role A with a source identity, then role B: B's trust policy only lets in a
caller carrying the transitive tag and the source identity, which proves both travelled.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway import keys
from gateway.credentials import SessionClaims
from gateway.iam.denial import MARKER
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop, config_from, serve_app
from tests.flows.conftest import ACCOUNT, LiveGateway, aws_cli, credentials_of, decode_with_cli, provider_arn

ARN = f"arn:aws:iam::{ACCOUNT}"
WEB, A, B = f"{ARN}:role/web", f"{ARN}:role/role-a", f"{ARN}:role/role-b"
TAGS_CLAIM = {
    "https://aws.amazon.com/tags": {
        "principal_tags": {"team": ["data"], "stage": ["dev"]},
        "transitive_tag_keys": ["team"],
    }
}
CHAIN_ACTIONS = ["sts:AssumeRole", "sts:TagSession", "sts:SetSourceIdentity"]


def _aws_trust(principal: str | list[str], actions: list[str], **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def _allow(*actions: str, resource: str = "*") -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": list(actions), "Resource": resource}],
    }


def chain_config(issuer: OIDCTestIssuer) -> dict[str, Any]:
    """Roles for chaining: web (federated start) -> role-a -> role-b, and one role per refusal."""
    federated = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn(issuer)},
                "Action": ["sts:AssumeRoleWithWebIdentity", "sts:TagSession"],
            }
        ],
    }
    inline = [
        {
            "name": "assume-by-account",
            "document": _allow("sts:AssumeRole", "sts:TagSession", resource=f"{ARN}:role/by-*"),
        },
        {"name": "key-info", "document": _allow("sts:GetAccessKeyInfo")},
    ]
    return {
        "account_id": ACCOUNT,
        "providers": [issuer.provider_config()],
        "roles": [
            {"name": "web", "trust_policy": federated, "policies": inline},
            {
                "name": "role-a",
                "max_session_duration": 7200,
                "trust_policy": _aws_trust(WEB, CHAIN_ACTIONS),
                "policies": [{"name": "decode", "document": _allow("sts:DecodeAuthorizationMessage")}],
            },
            {
                "name": "role-b",
                "max_session_duration": 7200,
                "trust_policy": _aws_trust(
                    A,
                    CHAIN_ACTIONS,
                    StringEquals={"aws:PrincipalTag/team": "data", "aws:SourceIdentity": "alice"},
                ),
            },
            {"name": "no-tag-session", "trust_policy": _aws_trust(WEB, ["sts:AssumeRole"])},
            {
                "name": "no-source-identity",
                "trust_policy": _aws_trust(A, ["sts:AssumeRole", "sts:TagSession"]),
            },
            {
                "name": "external",
                "trust_policy": _aws_trust(
                    WEB, ["sts:AssumeRole", "sts:TagSession"], StringEquals={"sts:ExternalId": "ext-123"}
                ),
            },
            {
                "name": "by-account-root",
                "trust_policy": _aws_trust(f"{ARN}:root", ["sts:AssumeRole", "sts:TagSession"]),
            },
            {
                "name": "by-account-id",
                "trust_policy": _aws_trust(ACCOUNT, ["sts:AssumeRole", "sts:TagSession"]),
            },
            {
                "name": "other-account",
                "trust_policy": _aws_trust(f"{ARN}:root", ["sts:AssumeRole", "sts:TagSession"]),
            },
        ],
    }


@pytest.fixture(scope="module")
def chain_gateway(
    background_loop: BackgroundLoop, issuer: OIDCTestIssuer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveGateway]:
    """fedgate with the chaining roles, on 127.0.0.1."""
    audit_path = tmp_path_factory.mktemp("audit") / "audit.jsonl"
    raw = chain_config(issuer) | {"audit": {"sink": "file", "path": str(audit_path)}}
    runner, port, app = background_loop.run(serve_app(config_from(raw)))
    yield LiveGateway(url=f"http://127.0.0.1:{port}", app=app, audit_path=audit_path, loop=background_loop)
    background_loop.run(runner.cleanup())


def _unchecked_sts(gateway: LiveGateway, creds: dict[str, str]) -> Any:
    """An STS client that sends what it is given: fedgate, not botocore, must refuse bad input."""
    return boto3.client(
        "sts",
        endpoint_url=gateway.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, parameter_validation=False),
        **creds,
    )


def _web_session(gateway: LiveGateway, issuer: OIDCTestIssuer, **kwargs: Any) -> dict[str, str]:
    response = gateway.sts().assume_role_with_web_identity(
        RoleArn=WEB, RoleSessionName="web-session", WebIdentityToken=issuer.mint(TAGS_CLAIM), **kwargs
    )
    return credentials_of(response)


def _claims(gateway: LiveGateway, creds: dict[str, str]) -> SessionClaims:
    service = gateway.app[keys.CREDENTIALS]
    return gateway.loop.run(
        service.validate(creds["aws_access_key_id"], creds["aws_session_token"], now=time.time())
    )


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return error["Code"], error["Message"]


def test_a_chain_carries_transitive_tags_and_the_source_identity(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    web = _web_session(chain_gateway, issuer)
    response = chain_gateway.sts(**web).assume_role(
        RoleArn=A,
        RoleSessionName="hop-a",
        SourceIdentity="alice",
        Tags=[{"Key": "ticket", "Value": "T-1"}],
        TransitiveTagKeys=["ticket"],
    )
    assert response["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/role-a/hop-a"
    assert response["SourceIdentity"] == "alice"
    assert 0 < response["PackedPolicySize"] <= 100
    remaining = response["Credentials"]["Expiration"].timestamp() - time.time()
    assert 3500 < remaining <= 3601  # the default hour
    hop_a = credentials_of(response)
    a_claims = _claims(chain_gateway, hop_a)
    assert dict(a_claims.tags) == {"team": "data", "ticket": "T-1"}  # "stage" was not transitive
    assert a_claims.transitive_tag_keys == ("team", "ticket")
    assert a_claims.chained and [arn for arn, _ in a_claims.chain] == [WEB]

    # role-b's trust policy requires aws:PrincipalTag/team and aws:SourceIdentity of the caller.
    response = chain_gateway.sts(**hop_a).assume_role(
        RoleArn=B, RoleSessionName="hop-b", DurationSeconds=3600
    )
    assert response["SourceIdentity"] == "alice"
    hop_b = credentials_of(response)
    identity = chain_gateway.sts(**hop_b).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/role-b/hop-b"
    assert identity["Account"] == ACCOUNT
    b_claims = _claims(chain_gateway, hop_b)
    assert b_claims.source_identity == "alice"
    assert dict(b_claims.tags) == {"team": "data", "ticket": "T-1"}
    assert [arn for arn, _ in b_claims.chain] == [WEB, A]
    assert not b_claims.mfa_authenticated

    # The source identity may be repeated, never changed.
    with pytest.raises(ClientError) as exc:
        chain_gateway.sts(**hop_a).assume_role(RoleArn=B, RoleSessionName="hop-b", SourceIdentity="mallory")
    assert _error(exc)[0] == "AccessDenied"
    chain_gateway.sts(**hop_a).assume_role(RoleArn=B, RoleSessionName="again", SourceIdentity="alice")
    # A transitive tag cannot be overridden further down the chain.
    with pytest.raises(ClientError) as exc:
        chain_gateway.sts(**hop_a).assume_role(
            RoleArn=B, RoleSessionName="hop-b", Tags=[{"Key": "TEAM", "Value": "ops"}]
        )
    code, message = _error(exc)
    assert code == "InvalidParameterValue" and "transitive" in message


def test_chained_sessions_are_capped_at_one_hour(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    web = _web_session(chain_gateway, issuer)
    with pytest.raises(ClientError) as exc:
        chain_gateway.sts(**web).assume_role(RoleArn=A, RoleSessionName="long", DurationSeconds=3601)
    assert _error(exc) == (
        "ValidationError",
        "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
    )
    with pytest.raises(ClientError) as exc:
        _unchecked_sts(chain_gateway, web).assume_role(
            RoleArn=A, RoleSessionName="short", DurationSeconds=899
        )
    assert _error(exc)[0] == "ValidationError"


def test_external_id_must_match(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    sts = chain_gateway.sts(**_web_session(chain_gateway, issuer))
    role = f"{ARN}:role/external"
    for external_id in ("ext-999", None):
        kwargs = {"ExternalId": external_id} if external_id else {}
        with pytest.raises(ClientError) as exc:
            sts.assume_role(RoleArn=role, RoleSessionName="x1", **kwargs)
        assert _error(exc) == (
            "AccessDenied",
            f"User: arn:aws:sts::{ACCOUNT}:assumed-role/web/web-session is not authorized to perform: "
            f"sts:AssumeRole on resource: {role}",
        )
    assert sts.assume_role(RoleArn=role, RoleSessionName="x1", ExternalId="ext-123")["Credentials"]
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=role, RoleSessionName="x1", ExternalId="bad id!")
    assert _error(exc)[0] == "ValidationError"


def test_tag_session_and_set_source_identity_must_be_trusted(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    web = _web_session(chain_gateway, issuer)
    # The web session carries a transitive tag, so even a call passing no tags needs sts:TagSession.
    with pytest.raises(ClientError) as exc:
        chain_gateway.sts(**web).assume_role(RoleArn=f"{ARN}:role/no-tag-session", RoleSessionName="s1")
    code, message = _error(exc)
    assert code == "AccessDenied" and "sts:TagSession" in message
    hop_a = credentials_of(
        chain_gateway.sts(**web).assume_role(RoleArn=A, RoleSessionName="s2", SourceIdentity="alice")
    )
    # hop_a carries a source identity, so the next role must trust sts:SetSourceIdentity.
    with pytest.raises(ClientError) as exc:
        chain_gateway.sts(**hop_a).assume_role(RoleArn=f"{ARN}:role/no-source-identity", RoleSessionName="s3")
    code, message = _error(exc)
    assert code == "AccessDenied" and "sts:SetSourceIdentity" in message


def test_trust_in_the_account_needs_the_callers_identity_policy(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    web = _web_session(chain_gateway, issuer)
    for name in ("by-account-root", "by-account-id"):
        response = chain_gateway.sts(**web).assume_role(RoleArn=f"{ARN}:role/{name}", RoleSessionName="acct")
        assert response["AssumedRoleUser"]["Arn"].endswith(f":assumed-role/{name}/acct")
    # Trust in the account only delegates to the caller's own policies: a session policy that
    # does not allow sts:AssumeRole leaves nothing to delegate to.
    narrowed = _web_session(chain_gateway, issuer, Policy=json.dumps(_allow("s3:GetObject")))
    with pytest.raises(ClientError) as exc:
        chain_gateway.sts(**narrowed).assume_role(
            RoleArn=f"{ARN}:role/by-account-root", RoleSessionName="acct"
        )
    assert _error(exc)[0] == "AccessDenied"
    # Trusted by the account, but the web role's identity policy allows sts:AssumeRole on by-* only.
    with pytest.raises(ClientError) as exc:
        chain_gateway.sts(**web).assume_role(RoleArn=f"{ARN}:role/other-account", RoleSessionName="acct")
    assert _error(exc)[0] == "AccessDenied"


def test_every_assume_role_error_code(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    sts = _unchecked_sts(chain_gateway, _web_session(chain_gateway, issuer))
    cases: list[tuple[dict[str, Any], str]] = [
        ({"RoleArn": f"{ARN}:role/missing", "RoleSessionName": "s1"}, "AccessDenied"),
        ({"RoleArn": "arn:aws:iam::1:role/x", "RoleSessionName": "s1"}, "ValidationError"),
        ({"RoleArn": A, "RoleSessionName": "no spaces"}, "ValidationError"),
        ({"RoleArn": A, "RoleSessionName": "s1", "Policy": '{"Statement": 1}'}, "MalformedPolicyDocument"),
        ({"RoleArn": A, "RoleSessionName": "s1", "SourceIdentity": "a"}, "ValidationError"),
        (
            {"RoleArn": A, "RoleSessionName": "s1", "PolicyArns": [{"arn": f"{ARN}:policy/nope"}]},
            "InvalidParameterValue",
        ),
        (
            {
                "RoleArn": A,
                "RoleSessionName": "s1",
                "Tags": [{"Key": "k", "Value": "1"}, {"Key": "K", "Value": "2"}],
            },
            "InvalidParameterValue",
        ),
        (
            {
                "RoleArn": A,
                "RoleSessionName": "s1",
                "Tags": [{"Key": "k", "Value": "v"}],
                "TransitiveTagKeys": ["x"],
            },
            "InvalidParameterValue",
        ),
        (
            {
                "RoleArn": A,
                "RoleSessionName": "s1",
                "Tags": [{"Key": f"k{i}", "Value": secrets.token_hex(128)} for i in range(50)],
            },
            "PackedPolicyTooLarge",
        ),
        (
            {
                "RoleArn": A,
                "RoleSessionName": "s1",
                "Tags": [{"Key": f"k{i}", "Value": "v"} for i in range(51)],
            },
            "ValidationError",
        ),
        # A role session has no MFA device of its own: any serial number and code are refused.
        (
            {
                "RoleArn": A,
                "RoleSessionName": "s1",
                "SerialNumber": f"{ARN}:mfa/alice",
                "TokenCode": "123456",
            },
            "AccessDenied",
        ),
        ({"RoleArn": A, "RoleSessionName": "s1", "TokenCode": "12345"}, "ValidationError"),
    ]
    for kwargs, code in cases:
        with pytest.raises(ClientError) as exc:
            sts.assume_role(**kwargs)
        assert _error(exc)[0] == code, kwargs


def test_the_cli_decodes_why_the_iam_api_denied(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    web = _web_session(chain_gateway, issuer)
    iam = boto3.client(
        "iam",
        endpoint_url=chain_gateway.url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        **web,
    )
    with pytest.raises(ClientError) as exc:
        iam.simulate_custom_policy(
            PolicyInputList=[json.dumps(_allow("s3:GetObject"))], ActionNames=["s3:GetObject"]
        )
    code, message = _error(exc)
    assert code == "AccessDenied"
    text, _, blob = message.rpartition(MARKER)
    assert text.startswith(f"User: arn:aws:sts::{ACCOUNT}:assumed-role/web/web-session is not authorized")
    hop_a = credentials_of(chain_gateway.sts(**web).assume_role(RoleArn=A, RoleSessionName="decoder"))
    env = {
        "AWS_ACCESS_KEY_ID": hop_a["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": hop_a["aws_secret_access_key"],
        "AWS_SESSION_TOKEN": hop_a["aws_session_token"],
    }
    decoded = decode_with_cli(chain_gateway.url, env, blob, clean_aws_env)
    assert decoded["allowed"] is False and decoded["explicitDeny"] is False
    assert decoded["context"]["action"] == "iam:SimulateCustomPolicy"
    assert decoded["context"]["resource"] == "*"
    assert decoded["context"]["principal"]["arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/web/web-session"
    keys_seen = {item["key"] for item in decoded["context"]["conditions"]["items"]}
    assert {"aws:PrincipalTag/team", "aws:SourceIp", "aws:MultiFactorAuthPresent"} <= keys_seen


def test_get_access_key_info(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    web = _web_session(chain_gateway, issuer)
    sts = _unchecked_sts(chain_gateway, web)
    for key_id in (web["aws_access_key_id"], "ASIAAAAAAAAAAAAAAAAA", "AKIAIOSFODNN7EXAMPLE"):
        assert sts.get_access_key_info(AccessKeyId=key_id)["Account"] == ACCOUNT
    for key_id, code in (
        ("ASIA1111111111111111", "InvalidParameterValue"),  # not a shape fedgate issues
        ("AROAAAAAAAAAAAAAAAAA", "InvalidParameterValue"),  # a role id, not an access key
        ("ASIA-not-a-key-id!!", "ValidationError"),
        ("ASIA", "ValidationError"),
    ):
        with pytest.raises(ClientError) as exc:
            sts.get_access_key_info(AccessKeyId=key_id)
        assert _error(exc)[0] == code, key_id
    hop_a = credentials_of(chain_gateway.sts(**web).assume_role(RoleArn=A, RoleSessionName="no-key-info"))
    with pytest.raises(ClientError) as exc:
        chain_gateway.sts(**hop_a).get_access_key_info(AccessKeyId=web["aws_access_key_id"])
    code, message = _error(exc)
    assert code == "AccessDenied" and "sts:GetAccessKeyInfo" in message


def _profiles(
    gateway: LiveGateway, issuer: OIDCTestIssuer, tmp_path: Path, *, endpoint_in_config: bool
) -> Path:
    token = tmp_path / "web-identity-token"
    token.write_text(issuer.mint(TAGS_CLAIM))
    endpoint = f"endpoint_url = {gateway.url}\n" if endpoint_in_config else ""
    config = tmp_path / "config"
    config.write_text(
        "[profile web]\n"
        f"role_arn = {WEB}\n"
        f"web_identity_token_file = {token}\n"
        "role_session_name = web-profile\n"
        f"{endpoint}"
        "\n[profile chained]\n"
        f"role_arn = {A}\n"
        "source_profile = web\n"
        "role_session_name = chained-profile\n"
        "duration_seconds = 900\n"
        f"{endpoint}"
    )
    return config


@pytest.mark.parametrize("endpoint_in_config", [True, False], ids=["endpoint_url", "AWS_ENDPOINT_URL_STS"])
def test_a_source_profile_chain_works_with_boto3_and_the_cli_unchanged(
    chain_gateway: LiveGateway,
    issuer: OIDCTestIssuer,
    clean_aws_env: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    endpoint_in_config: bool,
) -> None:
    config = _profiles(chain_gateway, issuer, tmp_path, endpoint_in_config=endpoint_in_config)
    env = dict(clean_aws_env, AWS_CONFIG_FILE=str(config), AWS_PROFILE="chained")
    if not endpoint_in_config:
        env["AWS_ENDPOINT_URL_STS"] = chain_gateway.url
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = boto3.Session(botocore_session=botocore.session.Session())
    credentials = session.get_credentials()
    assert credentials is not None and credentials.method == "assume-role"
    identity = session.client("sts", config=Config(retries={"max_attempts": 1})).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/role-a/chained-profile"

    out = subprocess.run(
        [aws_cli(), "sts", "get-caller-identity", "--output", "json"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/role-a/chained-profile"


def test_unsigned_assume_role_is_refused(chain_gateway: LiveGateway, clean_aws_env: dict[str, str]) -> None:
    sts = boto3.client(
        "sts",
        endpoint_url=chain_gateway.url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, retries={"max_attempts": 1}),
    )
    with pytest.raises(ClientError) as exc:
        sts.assume_role(RoleArn=A, RoleSessionName="anon")
    assert _error(exc)[0] == "MissingAuthenticationToken"


def test_revoking_a_role_revokes_the_sessions_chained_from_it(
    chain_gateway: LiveGateway, issuer: OIDCTestIssuer, clean_aws_env: dict[str, str]
) -> None:
    web = _web_session(chain_gateway, issuer)
    hop_a = credentials_of(
        chain_gateway.sts(**web).assume_role(RoleArn=A, RoleSessionName="hop", SourceIdentity="alice")
    )
    hop_b = credentials_of(chain_gateway.sts(**hop_a).assume_role(RoleArn=B, RoleSessionName="hop"))
    credentials = chain_gateway.app[keys.CREDENTIALS]
    # Last in this module: the gateway refuses web sessions issued before this from now on.
    chain_gateway.loop.run(credentials.revoke_role_sessions(WEB, time.time() + 1))
    for creds in (web, hop_a, hop_b):
        with pytest.raises(ClientError) as exc:
            chain_gateway.sts(**creds).get_caller_identity()
        assert _error(exc)[0] == "InvalidClientTokenId"
