"""GetSessionToken and GetFederationToken end to end, over TCP with boto3 and the aws CLI.

One gateway with a SQLite IAM database and an S3 upstream (moto) behind its proxy. IAM users are
made through the IAM API by a config-declared admin; they ask STS for their own sessions (with and
without MFA) and for federated users, use them on STS, the IAM API and the proxy, and lose them
when their key is made inactive or deleted, or their sessions are revoked.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway import keys
from gateway.credentials import SessionClaims, revoke_user_sessions
from gateway.iam import totp
from tests.conftest import BackgroundLoop, config_from, serve_app
from tests.flows.conftest import aws_cli
from tests.proxy.conftest import Moto, moto_upstream
from tests.proxy.conftest import moto as moto  # the fixture, for this module

ACCOUNT = "123456789012"
ADMIN_KEY = "AKIASESSIONADMIN0001"
ADMIN_SECRET = "session-admin-secret-" + "a" * 19
V = "2012-10-17"
TARGET = f"arn:aws:iam::{ACCOUNT}:role/target"
BUCKET = "data"


def _statement(action: str | list[str], resource: str, **condition: Any) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": V, "Statement": list(statements)})


#: What the test users may do themselves: read data/public/*, data/mfa/* only with MFA, read
#: themselves in IAM, ask for federation tokens (tagged), assume the target role, read key info.
USER_POLICY = _policy(
    _statement("s3:GetObject", f"arn:aws:s3:::{BUCKET}/public/*"),
    _statement("s3:GetObject", f"arn:aws:s3:::{BUCKET}/mfa/*", Bool={"aws:MultiFactorAuthPresent": "true"}),
    _statement("iam:GetUser", "*"),
    _statement(["sts:GetFederationToken", "sts:TagSession"], "*"),
    _statement("sts:AssumeRole", TARGET),
    _statement("sts:GetAccessKeyInfo", "*"),
)


class Gateway:
    """The live gateway, its admin's clients, and helpers to make users and clients."""

    def __init__(self, loop: BackgroundLoop, app: web.Application, port: int) -> None:
        self.loop = loop
        self.app = app
        self.url = f"http://127.0.0.1:{port}"
        self.s3_url = f"http://localhost:{port}"
        self.iam = self.client("iam", ADMIN_KEY, ADMIN_SECRET)

    def client(self, service: str, key: str, secret: str, token: str | None = None) -> Any:
        # botocore checks lengths and ranges itself; fedgate, not the client, must refuse them.
        options: dict[str, Any] = {"retries": {"max_attempts": 1}, "parameter_validation": False}
        if service == "s3":
            options["s3"] = {"addressing_style": "path"}
        return boto3.client(
            service,
            endpoint_url=self.s3_url if service == "s3" else self.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            aws_session_token=token,
            config=Config(**options),
        )

    def session_client(self, service: str, credentials: dict[str, Any]) -> Any:
        return self.client(
            service, credentials["AccessKeyId"], credentials["SecretAccessKey"], credentials["SessionToken"]
        )

    def new_user(self, name: str, policy: str = USER_POLICY) -> tuple[str, str]:
        """A database user with ``policy`` inline and one access key; its key id and secret."""
        self.iam.create_user(UserName=name)
        self.iam.put_user_policy(UserName=name, PolicyName="own", PolicyDocument=policy)
        key = self.iam.create_access_key(UserName=name)["AccessKey"]
        return key["AccessKeyId"], key["SecretAccessKey"]

    def sts(self, key: str, secret: str) -> Any:
        return self.client("sts", key, secret)


@pytest.fixture(scope="module")
def gateway(
    background_loop: BackgroundLoop, moto: Moto, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("session-tokens")
    s3 = moto.client()
    for key in ("public/a.txt", "private/b.txt", "mfa/c.txt"):
        s3.put_object(Bucket=BUCKET, Key=key, Body=key.encode())
    admin_all = {"Version": V, "Statement": [_statement("*", "*")]}
    target_trust = {
        "Version": V,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    config = config_from(
        {
            "account_id": ACCOUNT,
            "audit": {"sink": "file", "path": str(tmp / "audit.jsonl")},
            "database": {"url": f"sqlite:///{tmp}/iam.db"},
            "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": "k" * 32}}]},
            "users": [
                {
                    "name": "session-admin",
                    "policies": [{"name": "all", "document": admin_all}],
                    "access_keys": [{"id": ADMIN_KEY, "secret": {"value": ADMIN_SECRET}}],
                }
            ],
            "roles": [
                {
                    "name": "target",
                    "max_session_duration": 7200,
                    "trust_policy": target_trust,
                    "policies": [{"name": "read", "document": json.loads(USER_POLICY)}],
                }
            ],
            "upstreams": [moto_upstream(moto.url)],
        }
    )
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_EC2_METADATA_DISABLED", "true")
        runner, port, app = background_loop.run(serve_app(config))
        try:
            yield Gateway(background_loop, app, port)
        finally:
            background_loop.run(runner.cleanup())


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    error = exc.value.response["Error"]
    return str(error["Code"]), str(error["Message"])


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return _error(exc)[0]


def _reads(s3: Any, key: str) -> str:
    """``ok`` when the object is read through the proxy, else the error code."""
    try:
        s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def _claims(gateway: Gateway, creds: dict[str, Any]) -> SessionClaims:
    """What the session token carries, as the gateway validates it."""
    service = gateway.app[keys.CREDENTIALS]
    return gateway.loop.run(service.validate(creds["AccessKeyId"], creds["SessionToken"], now=time.time()))


def _mfa_device(gateway: Gateway, user: str) -> tuple[str, bytes]:
    """A virtual MFA device enabled for ``user`` (its two codes spent); serial and seed."""
    device = gateway.iam.create_virtual_mfa_device(VirtualMFADeviceName=f"{user}-phone")["VirtualMFADevice"]
    serial, seed = device["SerialNumber"], base64.b32decode(device["Base32StringSeed"])
    step = totp.step_of(time.time())
    one, two = (totp.code_at(seed, step + s) for s in (-1, 0))
    gateway.iam.enable_mfa_device(
        UserName=user, SerialNumber=serial, AuthenticationCode1=one, AuthenticationCode2=two
    )
    return serial, seed


def _next_code(seed: bytes) -> str:
    # The steps before are spent enabling the device; the next one is accepted (clocks drift).
    return totp.code_at(seed, totp.step_of(time.time()) + 1)


# --- GetSessionToken -------------------------------------------------------------------------


def test_a_users_session_is_the_user_with_the_users_permissions(gateway: Gateway) -> None:
    key, secret = gateway.new_user("gst-alice")
    answer = gateway.sts(key, secret).get_session_token()
    creds = answer["Credentials"]
    assert set(answer) - {"ResponseMetadata"} == {"Credentials"}
    assert creds["AccessKeyId"].startswith("ASIA") and creds["SessionToken"]
    # The default is 12 hours; the expiration is whole seconds after the call.
    issued = _claims(gateway, creds)
    assert issued.expires_at - int(issued.issued_at) in (43200, 43199)
    assert creds["Expiration"] == datetime.fromtimestamp(issued.expires_at, UTC)
    identity = gateway.session_client("sts", creds).get_caller_identity()
    user = gateway.iam.get_user(UserName="gst-alice")["User"]
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/gst-alice" == user["Arn"]
    assert identity["UserId"] == user["UserId"] and identity["Account"] == ACCOUNT
    s3 = gateway.session_client("s3", creds)
    assert _reads(s3, "public/a.txt") == "ok"
    assert _reads(s3, "private/b.txt") == "AccessDenied"
    assert _reads(s3, "mfa/c.txt") == "AccessDenied"  # aws:MultiFactorAuthPresent is false


def test_without_mfa_a_users_session_calls_no_iam_and_of_sts_only_assume_role_and_identity(
    gateway: Gateway,
) -> None:
    key, secret = gateway.new_user("gst-nomfa")
    creds = gateway.sts(key, secret).get_session_token(DurationSeconds=900)["Credentials"]
    with pytest.raises(ClientError) as exc:
        gateway.session_client("iam", creds).get_user()
    assert _error(exc) == ("InvalidClientTokenId", "The security token included in the request is invalid")
    sts = gateway.session_client("sts", creds)
    for call in (
        lambda: sts.get_session_token(),
        lambda: sts.get_federation_token(Name="fed-x", Policy=USER_POLICY),
        lambda: sts.get_access_key_info(AccessKeyId=key),
        lambda: sts.decode_authorization_message(EncodedMessage="x"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "AccessDenied"
    # AssumeRole is allowed, and is not role chaining: two hours are not capped at one.
    role = sts.assume_role(RoleArn=TARGET, RoleSessionName="from-user", DurationSeconds=7200)
    assert role["AssumedRoleUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/target/from-user"
    assert _reads(gateway.session_client("s3", role["Credentials"]), "public/a.txt") == "ok"


def test_get_session_token_durations_and_callers_are_checked_as_aws_does(gateway: Gateway) -> None:
    key, secret = gateway.new_user("gst-durations")
    sts = gateway.sts(key, secret)
    for bad in (899, 129601):
        with pytest.raises(ClientError) as exc:
            sts.get_session_token(DurationSeconds=bad)
        assert _code(exc) == "ValidationError"
    longest = sts.get_session_token(DurationSeconds=129600)["Credentials"]
    claims = _claims(gateway, longest)
    assert claims.expires_at - int(claims.issued_at) in (129600, 129599)
    # A role session may ask for neither kind of user session.
    role = gateway.session_client("sts", sts.get_session_token()["Credentials"]).assume_role(
        RoleArn=TARGET, RoleSessionName="role-session"
    )["Credentials"]
    role_sts = gateway.session_client("sts", role)
    with pytest.raises(ClientError) as exc:
        role_sts.get_session_token()
    assert _error(exc) == ("AccessDenied", "Cannot call GetSessionToken with session credentials")
    with pytest.raises(ClientError) as exc:
        role_sts.get_federation_token(Name="from-role")
    assert _error(exc) == ("AccessDenied", "Cannot call GetFederationToken with session credentials")
    # A TokenCode without its SerialNumber, and malformed ones.
    for params in ({"TokenCode": "123456"}, {"SerialNumber": "short", "TokenCode": "123456"}):
        with pytest.raises(ClientError) as exc:
            sts.get_session_token(**params)
        assert _code(exc) == "ValidationError"


def test_with_mfa_a_users_session_carries_it_and_may_call_iam(gateway: Gateway) -> None:
    key, secret = gateway.new_user("gst-mfa")
    serial, seed = _mfa_device(gateway, "gst-mfa")
    sts = gateway.sts(key, secret)
    with pytest.raises(ClientError) as exc:
        sts.get_session_token(SerialNumber=serial, TokenCode=f"{(int(_next_code(seed)) + 1) % 10**6:06d}")
    assert _code(exc) == "AccessDenied"
    creds = sts.get_session_token(SerialNumber=serial, TokenCode=_next_code(seed))["Credentials"]
    assert gateway.session_client("iam", creds).get_user()["User"]["UserName"] == "gst-mfa"
    s3 = gateway.session_client("s3", creds)
    assert _reads(s3, "mfa/c.txt") == "ok"  # aws:MultiFactorAuthPresent is true
    assert _reads(s3, "private/b.txt") == "AccessDenied"  # still only the user's permissions
    # Of STS, still only AssumeRole and GetCallerIdentity (AWS's rule holds with MFA too).
    with pytest.raises(ClientError) as exc:
        gateway.session_client("sts", creds).get_access_key_info(AccessKeyId=key)
    assert _code(exc) == "AccessDenied"


# --- GetFederationToken ----------------------------------------------------------------------


def test_a_federated_user_gets_the_intersection_of_the_users_and_the_passed_policies(
    gateway: Gateway,
) -> None:
    key, secret = gateway.new_user("gft-bob")
    passed = _policy(_statement("s3:GetObject", f"arn:aws:s3:::{BUCKET}/*"))
    answer = gateway.sts(key, secret).get_federation_token(
        Name="bob@example.com", Policy=passed, Tags=[{"Key": "team", "Value": "data"}]
    )
    assert answer["FederatedUser"] == {
        "FederatedUserId": f"{ACCOUNT}:bob@example.com",
        "Arn": f"arn:aws:sts::{ACCOUNT}:federated-user/bob@example.com",
    }
    assert 0 < answer["PackedPolicySize"] <= 100
    creds = answer["Credentials"]
    identity = gateway.session_client("sts", creds).get_caller_identity()
    assert identity["Arn"] == answer["FederatedUser"]["Arn"]
    assert identity["UserId"] == f"{ACCOUNT}:bob@example.com"
    s3 = gateway.session_client("s3", creds)
    assert _reads(s3, "public/a.txt") == "ok"  # both allow it
    assert _reads(s3, "private/b.txt") == "AccessDenied"  # the passed policy does, the user's not
    # A managed session policy works the same way; one that allows nothing of the user's, nothing.
    gateway.iam.create_policy(
        PolicyName="gft-private-only",
        PolicyDocument=_policy(_statement("s3:GetObject", f"arn:aws:s3:::{BUCKET}/private/*")),
    )
    arn = f"arn:aws:iam::{ACCOUNT}:policy/gft-private-only"
    managed = gateway.sts(key, secret).get_federation_token(Name="bob2", PolicyArns=[{"arn": arn}])
    s3 = gateway.session_client("s3", managed["Credentials"])
    assert _reads(s3, "public/a.txt") == _reads(s3, "private/b.txt") == "AccessDenied"


def test_a_federated_user_given_no_policy_may_do_nothing(gateway: Gateway) -> None:
    key, secret = gateway.new_user("gft-nopolicy")
    answer = gateway.sts(key, secret).get_federation_token(Name="nobody", DurationSeconds=900)
    assert "PackedPolicySize" not in answer
    assert _reads(gateway.session_client("s3", answer["Credentials"]), "public/a.txt") == "AccessDenied"


def test_a_federated_user_calls_no_iam_and_of_sts_only_get_caller_identity(gateway: Gateway) -> None:
    key, secret = gateway.new_user("gft-limits")
    everything = _policy(_statement("*", "*"))
    creds = gateway.sts(key, secret).get_federation_token(Name="limited", Policy=everything)["Credentials"]
    with pytest.raises(ClientError) as exc:
        gateway.session_client("iam", creds).get_user(UserName="gft-limits")
    assert _code(exc) == "InvalidClientTokenId"
    sts = gateway.session_client("sts", creds)
    assert sts.get_caller_identity()["Arn"].endswith(":federated-user/limited")
    for call in (
        lambda: sts.assume_role(RoleArn=TARGET, RoleSessionName="x1"),
        lambda: sts.get_session_token(),
        lambda: sts.get_federation_token(Name="again"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "AccessDenied"


@pytest.fixture(scope="module")
def params_user(gateway: Gateway) -> tuple[str, str]:
    return gateway.new_user("gft-params")


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"Name": "a"}, "ValidationError"),
        ({"Name": "n" * 33}, "ValidationError"),
        ({"Name": "bad name"}, "ValidationError"),
        ({"Name": "durations", "DurationSeconds": 899}, "ValidationError"),
        ({"Name": "durations", "DurationSeconds": 129601}, "ValidationError"),
        (
            {"Name": "malformed", "Policy": '{"Version": "2012-10-17", "Statement": 7}'},
            "MalformedPolicyDocument",
        ),
        (
            {"Name": "unknown", "PolicyArns": [{"arn": f"arn:aws:iam::{ACCOUNT}:policy/none"}]},
            "InvalidParameterValue",
        ),
    ],
)
def test_get_federation_token_refuses_bad_parameters_with_aws_codes(
    gateway: Gateway, params_user: tuple[str, str], params: dict[str, Any], code: str
) -> None:
    sts = gateway.sts(*params_user)
    with pytest.raises(ClientError) as exc:
        sts.get_federation_token(**params)
    assert _code(exc) == code


def _noise(seed: str, length: int) -> str:
    text = ""
    while len(text) < length:
        text += hashlib.sha256((seed + text).encode()).hexdigest()
    return text[:length]


def test_tags_too_large_to_pack_and_a_user_not_allowed_are_refused(gateway: Gateway) -> None:
    key, secret = gateway.new_user("gft-packed")
    # Incompressible (hex of digests): 50 tags of 128 + 256 characters cannot pack into a token.
    tags = [{"Key": _noise(f"k{i}", 128), "Value": _noise(f"v{i}", 256)} for i in range(50)]
    with pytest.raises(ClientError) as exc:
        gateway.sts(key, secret).get_federation_token(Name="packed", Policy=USER_POLICY, Tags=tags)
    assert _code(exc) == "PackedPolicyTooLarge"
    key, secret = gateway.new_user("gft-denied", _policy(_statement("s3:GetObject", "*")))
    with pytest.raises(ClientError) as exc:
        gateway.sts(key, secret).get_federation_token(Name="denied", Policy=USER_POLICY)
    assert _error(exc) == (
        "AccessDenied",
        f"User: arn:aws:iam::{ACCOUNT}:user/gft-denied is not authorized to perform: "
        f"sts:GetFederationToken on resource: arn:aws:sts::{ACCOUNT}:federated-user/denied",
    )


# --- Revocation ------------------------------------------------------------------------------


def _works(gateway: Gateway, creds: dict[str, Any]) -> str:
    """``ok`` when the session answers GetCallerIdentity, else the error code."""
    try:
        gateway.session_client("sts", creds).get_caller_identity()
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def test_an_inactive_keys_sessions_and_their_chains_are_revoked_and_stay_so(gateway: Gateway) -> None:
    key, secret = gateway.new_user("rev-key")
    sts = gateway.sts(key, secret)
    own = sts.get_session_token()["Credentials"]
    federated = sts.get_federation_token(Name="rev-fed", Policy=USER_POLICY)["Credentials"]
    chained = gateway.session_client("sts", own).assume_role(RoleArn=TARGET, RoleSessionName="chained")
    sessions = [own, federated, chained["Credentials"]]
    assert [_works(gateway, c) for c in sessions] == ["ok"] * 3
    gateway.iam.update_access_key(UserName="rev-key", AccessKeyId=key, Status="Inactive")
    assert [_works(gateway, c) for c in sessions] == ["InvalidClientTokenId"] * 3
    # Active again: the key works, and new sessions do, but the revoked ones stay revoked.
    gateway.iam.update_access_key(UserName="rev-key", AccessKeyId=key, Status="Active")
    assert _works(gateway, sts.get_session_token()["Credentials"]) == "ok"
    assert [_works(gateway, c) for c in sessions] == ["InvalidClientTokenId"] * 3


def test_a_deleted_keys_sessions_are_revoked_and_the_users_other_keys_are_not(gateway: Gateway) -> None:
    key, secret = gateway.new_user("rev-delete")
    other = gateway.iam.create_access_key(UserName="rev-delete")["AccessKey"]
    doomed = gateway.sts(key, secret).get_session_token()["Credentials"]
    kept = gateway.sts(other["AccessKeyId"], other["SecretAccessKey"]).get_session_token()["Credentials"]
    gateway.iam.delete_access_key(UserName="rev-delete", AccessKeyId=key)
    assert (_works(gateway, doomed), _works(gateway, kept)) == ("InvalidClientTokenId", "ok")


def test_revoking_a_users_sessions_revokes_every_kind_and_chain_but_not_other_users(
    gateway: Gateway,
) -> None:
    key, secret = gateway.new_user("rev-user")
    bystander = gateway.sts(*gateway.new_user("rev-bystander")).get_session_token()["Credentials"]
    sts = gateway.sts(key, secret)
    own = sts.get_session_token()["Credentials"]
    federated = sts.get_federation_token(Name="rev-user-fed", Policy=USER_POLICY)["Credentials"]
    chained = gateway.session_client("sts", own).assume_role(RoleArn=TARGET, RoleSessionName="c2")
    # A role session the user's long-term key assumed is the role's, not the user's session.
    direct = sts.assume_role(RoleArn=TARGET, RoleSessionName="direct")["Credentials"]
    user_arn = f"arn:aws:iam::{ACCOUNT}:user/rev-user"
    time.sleep(0.01)  # the cutoff ("now") falls after every session issued so far
    runtime = gateway.app[keys.DATABASE]

    async def revoke() -> None:
        await revoke_user_sessions(runtime.database, user_arn, time.time())
        await runtime.watcher.check()

    gateway.loop.run(revoke())
    revoked = [own, federated, chained["Credentials"]]
    assert [_works(gateway, c) for c in revoked] == ["InvalidClientTokenId"] * 3
    assert (_works(gateway, direct), _works(gateway, bystander)) == ("ok", "ok")
    assert _works(gateway, sts.get_session_token()["Credentials"]) == "ok"  # later ones are not


def test_deleting_a_user_revokes_its_sessions(gateway: Gateway) -> None:
    key, secret = gateway.new_user("rev-leaver")
    own = gateway.sts(key, secret).get_session_token()["Credentials"]
    gateway.iam.delete_user_policy(UserName="rev-leaver", PolicyName="own")
    assert _works(gateway, own) == "ok"
    runtime = gateway.app[keys.DATABASE]

    async def drop_key_directly() -> None:
        # The key goes without the IAM API's revocation, to isolate the user's.
        async with runtime.database.write() as tx:
            await tx.access_keys.delete(key)
        await runtime.watcher.check()

    gateway.loop.run(drop_key_directly())
    assert _works(gateway, own) == "ok"
    gateway.iam.delete_user(UserName="rev-leaver")
    assert _works(gateway, own) == "InvalidClientTokenId"


# --- The aws CLI and the audit trail ---------------------------------------------------------


def _cli(gateway: Gateway, env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [aws_cli(), "sts", *args, "--endpoint-url", gateway.url, "--output", "json"],
        env={**env, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    answer: dict[str, Any] = json.loads(out.stdout)
    return answer


def test_the_aws_cli_gets_both_kinds_and_uses_them(gateway: Gateway, clean_aws_env: dict[str, str]) -> None:
    key, secret = gateway.new_user("cli-user")
    user_env = {**clean_aws_env, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    own = _cli(gateway, user_env, "get-session-token", "--duration-seconds", "3600")["Credentials"]
    federated = _cli(gateway, user_env, "get-federation-token", "--name", "cli-fed", "--policy", USER_POLICY)
    assert federated["FederatedUser"]["Arn"] == f"arn:aws:sts::{ACCOUNT}:federated-user/cli-fed"
    for creds, arn in (
        (own, f"arn:aws:iam::{ACCOUNT}:user/cli-user"),
        (federated["Credentials"], federated["FederatedUser"]["Arn"]),
    ):
        env = {
            **clean_aws_env,
            "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"],
        }
        assert _cli(gateway, env, "get-caller-identity")["Arn"] == arn


def test_user_sessions_are_audited_as_their_principals(gateway: Gateway) -> None:
    key, secret = gateway.new_user("audited")
    sts = gateway.sts(key, secret)
    own = sts.get_session_token()["Credentials"]
    federated = sts.get_federation_token(Name="audited-fed", Policy=USER_POLICY)["Credentials"]
    for creds in (own, federated):
        gateway.session_client("sts", creds).get_caller_identity()
    path = Path(gateway.app[keys.CONFIG].audit.path or "")
    events = [json.loads(line) for line in path.read_text().splitlines()]
    by_key = {
        e["userIdentity"].get("accessKeyId"): e for e in events if e["eventName"] == "GetCallerIdentity"
    }
    mine = by_key[own["AccessKeyId"]]["userIdentity"]
    assert (mine["type"], mine["userName"], mine["sessionContext"]["attributes"]["mfaAuthenticated"]) == (
        "IAMUser",
        "audited",
        "false",
    )
    fed = by_key[federated["AccessKeyId"]]["userIdentity"]
    assert (fed["type"], fed["principalId"]) == ("FederatedUser", f"{ACCOUNT}:audited-fed")
    assert fed["sessionContext"]["sessionIssuer"]["arn"] == f"arn:aws:iam::{ACCOUNT}:user/audited"
    issued = [e for e in events if e["eventName"] == "GetFederationToken" and e.get("errorCode") is None]
    assert issued[-1]["responseElements"]["federatedUser"]["arn"].endswith(":federated-user/audited-fed")


def test_a_callers_remembered_decisions_follow_the_catalog(gateway: Gateway) -> None:
    """The proxy works out each caller's policies, tags and decisions once per catalog snapshot:
    a change to the user's policy or tags applies to its very next request, whether it signs
    with its long-term key or with its own session."""
    key, secret = gateway.new_user("viewer")
    long_term = gateway.client("s3", key, secret)
    session = gateway.session_client("s3", gateway.sts(key, secret).get_session_token()["Credentials"])
    for client in (long_term, session):
        for _ in range(2):  # the second answer comes from what the first one worked out
            assert _reads(client, "public/a.txt") == "ok"
            assert _reads(client, "private/b.txt") == "AccessDenied"
    by_team = _policy(_statement("s3:GetObject", f"arn:aws:s3:::{BUCKET}/${{aws:PrincipalTag/team}}/*"))
    gateway.iam.put_user_policy(UserName="viewer", PolicyName="own", PolicyDocument=by_team)
    for client in (long_term, session):
        assert _reads(client, "public/a.txt") == "AccessDenied"
        assert _reads(client, "private/b.txt") == "AccessDenied"  # no team tag yet
    gateway.iam.tag_user(UserName="viewer", Tags=[{"Key": "team", "Value": "private"}])
    for client in (long_term, session):
        assert _reads(client, "private/b.txt") == "ok"
        assert _reads(client, "public/a.txt") == "AccessDenied"
    gateway.iam.untag_user(UserName="viewer", TagKeys=["team"])
    for client in (long_term, session):
        assert _reads(client, "private/b.txt") == "AccessDenied"
