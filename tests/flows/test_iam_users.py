"""IAM users sign with long-term access keys (AKIA...) wherever a session works: STS
GetCallerIdentity (boto3 and the aws CLI), the IAM Query API (SimulatePrincipalPolicy on a user);
keys the YAML declares and keys in the database; inactive, deleted and unknown keys refused."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway import keys
from gateway.credentials import new_secret_access_key
from gateway.db import IamDatabase
from tests.conftest import BackgroundLoop, config_from, eventually, serve_app
from tests.flows.conftest import aws_cli

ACCOUNT = "123456789012"
ADMIN_KEY = "AKIAADMINEXAMPLE0001"
ADMIN_SECRET = "admin-secret-" + "a" * 27
V = "2012-10-17"


def _allow(action: str, resource: str = "*") -> dict[str, Any]:
    return {"Version": V, "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


class Gateway:
    """A live fedgate with a SQLite database, a config-declared admin and a database user."""

    def __init__(self, loop: BackgroundLoop, app: web.Application, port: int) -> None:
        self.loop = loop
        self.app = app
        self.url = f"http://127.0.0.1:{port}"

    @property
    def db(self) -> IamDatabase:
        return self.app[keys.DATABASE].database

    def client(self, service: str, key: str, secret: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}),
        )

    def converged(self, revision: int) -> None:
        async def caught_up() -> None:
            await eventually(lambda: self.app[keys.CATALOG].snapshot.revision >= revision, what="catalog")

        self.loop.run(caught_up())

    def create_user(self, name: str, *, policy: dict[str, Any] | None = None) -> tuple[str, str]:
        """A database user with one access key (and an inline policy); its key id and secret."""
        secret = new_secret_access_key()

        async def create() -> tuple[str, int]:
            async with self.db.write() as tx:
                user = await tx.users.create(name)
                if policy is not None:
                    await tx.inline_policies.put("user", user.id, "own", json.dumps(policy))
                key = await tx.access_keys.create(user.id, secret)
            return key.id, tx.revision

        key_id, revision = self.loop.run(create())
        self.converged(revision)
        return key_id, secret

    def set_status(self, key_id: str, status: str) -> None:
        async def change() -> int:
            async with self.db.write() as tx:
                await tx.access_keys.set_status(key_id, status)  # type: ignore[arg-type]
            return tx.revision

        self.converged(self.loop.run(change()))


@pytest.fixture(scope="module")
def gateway(background_loop: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("users")
    secret_file = tmp / "admin-secret"
    secret_file.write_text(ADMIN_SECRET + "\n")  # a secret reference, as a deployment gives it
    config = config_from(
        {
            "account_id": ACCOUNT,
            "audit": {"sink": "file", "path": str(tmp / "audit.jsonl")},
            "database": {"url": f"sqlite:///{tmp}/iam.db"},
            "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": "k" * 32}}]},
            "users": [
                {
                    "name": "admin",
                    "path": "/ops/",
                    "policies": [{"name": "all", "document": _allow("*")}],
                    "access_keys": [{"id": ADMIN_KEY, "secret": {"file": str(secret_file)}}],
                    "tags": {"team": "ops"},
                }
            ],
        }
    )
    runner, port, app = background_loop.run(serve_app(config))
    yield Gateway(background_loop, app, port)
    background_loop.run(runner.cleanup())


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_a_config_users_key_answers_get_caller_identity(gateway: Gateway) -> None:
    identity = gateway.client("sts", ADMIN_KEY, ADMIN_SECRET).get_caller_identity()
    snapshot = gateway.app[keys.CATALOG].snapshot
    admin = snapshot.user_named("admin")
    assert admin is not None and admin.source == "config"
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/ops/admin"
    assert identity["UserId"] == admin.user_id and identity["UserId"].startswith("AIDA")
    assert identity["Account"] == ACCOUNT


def test_a_database_users_key_works_until_it_is_made_inactive(gateway: Gateway) -> None:
    key_id, secret = gateway.create_user("dev")
    sts = gateway.client("sts", key_id, secret)
    identity = sts.get_caller_identity()
    assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/dev"
    gateway.set_status(key_id, "Inactive")
    with pytest.raises(ClientError) as exc:
        sts.get_caller_identity()
    assert _code(exc) == "InvalidClientTokenId"
    gateway.set_status(key_id, "Active")
    assert sts.get_caller_identity()["Arn"] == identity["Arn"]


def test_wrong_secret_unknown_and_deleted_keys_are_refused(gateway: Gateway) -> None:
    with pytest.raises(ClientError) as exc:
        gateway.client("sts", ADMIN_KEY, "not-the-secret" + "x" * 26).get_caller_identity()
    assert _code(exc) == "SignatureDoesNotMatch"
    with pytest.raises(ClientError) as exc:
        gateway.client("sts", "AKIAUNKNOWNEXAMPLE00", ADMIN_SECRET).get_caller_identity()
    assert _code(exc) == "InvalidClientTokenId"
    key_id, secret = gateway.create_user("leaver")

    async def delete() -> int:
        async with gateway.db.write() as tx:
            await tx.access_keys.delete(key_id)
        return tx.revision

    gateway.converged(gateway.loop.run(delete()))
    with pytest.raises(ClientError) as exc:
        gateway.client("sts", key_id, secret).get_caller_identity()
    assert _code(exc) == "InvalidClientTokenId"


def test_the_aws_cli_signs_with_a_users_key(gateway: Gateway, clean_aws_env: dict[str, str]) -> None:
    env = dict(
        clean_aws_env,
        PATH="/usr/bin:/bin",
        AWS_ACCESS_KEY_ID=ADMIN_KEY,
        AWS_SECRET_ACCESS_KEY=ADMIN_SECRET,
    )
    out = subprocess.run(
        [aws_cli(), "sts", "get-caller-identity", "--endpoint-url", gateway.url, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/ops/admin"


def test_users_are_authorized_for_iam_actions_and_can_be_simulated(gateway: Gateway) -> None:
    admin = gateway.client("iam", ADMIN_KEY, ADMIN_SECRET)
    reader_key, reader_secret = gateway.create_user("reader", policy=_allow("s3:GetObject"))
    result = admin.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{ACCOUNT}:user/reader", ActionNames=["s3:GetObject", "s3:PutObject"]
    )["EvaluationResults"]
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in result] == [
        ("s3:GetObject", "allowed"),
        ("s3:PutObject", "implicitDeny"),
    ]
    assert result[0]["MatchedStatements"][0]["SourcePolicyType"] == "user"
    # The reader's own policies do not allow simulating: AccessDenied names the user.
    with pytest.raises(ClientError) as exc:
        gateway.client("iam", reader_key, reader_secret).simulate_custom_policy(
            PolicyInputList=[json.dumps(_allow("s3:*"))], ActionNames=["s3:GetObject"]
        )
    assert _code(exc) == "AccessDenied"
    assert f"arn:aws:iam::{ACCOUNT}:user/reader" in exc.value.response["Error"]["Message"]


def test_a_users_calls_are_audited_as_iam_user(gateway: Gateway) -> None:
    gateway.client("sts", ADMIN_KEY, ADMIN_SECRET).get_caller_identity()
    path = Path(gateway.app[keys.CONFIG].audit.path or "")
    events = [json.loads(line) for line in path.read_text().splitlines()]
    mine = [e for e in events if e["userIdentity"].get("accessKeyId") == ADMIN_KEY]
    assert mine and mine[-1]["userIdentity"]["type"] == "IAMUser"
    assert mine[-1]["userIdentity"]["userName"] == "admin"
    assert ADMIN_SECRET not in path.read_text()


def test_last_use_is_recorded_off_the_hot_path(gateway: Gateway) -> None:
    key_id, secret = gateway.create_user("tracked")
    gateway.client("sts", key_id, secret).get_caller_identity()

    async def last_used() -> str | None:
        await gateway.app[keys.DATABASE].key_usage.flush()
        async with gateway.db.read() as tx:
            record = await tx.access_keys.require(key_id)
        return record.last_used_service

    assert gateway.loop.run(last_used()) == "sts"


def test_a_users_key_drives_the_iam_api_and_config_users_are_read_only(gateway: Gateway) -> None:
    admin = gateway.client("iam", ADMIN_KEY, ADMIN_SECRET)
    created = admin.create_user(UserName="bob")["User"]
    assert created["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/bob"
    key = admin.create_access_key(UserName="bob")["AccessKey"]
    gateway.converged(gateway.loop.run(gateway.db.revision()))
    bob = gateway.client("iam", key["AccessKeyId"], key["SecretAccessKey"])
    with pytest.raises(ClientError) as exc:
        bob.create_user(UserName="carol")  # bob has no policy
    assert _code(exc) == "AccessDenied"
    assert (
        f"User: arn:aws:iam::{ACCOUNT}:user/bob is not authorized" in exc.value.response["Error"]["Message"]
    )
    # The YAML's user: its name is taken, and it cannot be changed through the API.
    with pytest.raises(ClientError) as exc:
        admin.create_user(UserName="Admin")
    assert _code(exc) == "EntityAlreadyExists"
    with pytest.raises(ClientError) as exc:
        admin.put_user_policy(UserName="admin", PolicyName="more", PolicyDocument=json.dumps(_allow("*")))
    assert _code(exc) == "UnmodifiableEntity"
