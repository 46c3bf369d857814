"""``fedgate iam create-admin`` and ``fedgate iam export`` against a SQLite file: the bootstrap key
works on a gateway process, survives its restart, and the export loads back as configuration."""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.app import create_app
from gateway.cli import main
from gateway.config import DatabaseSettings, GatewayConfig
from gateway.credentials import KeyRing
from gateway.db import IamDatabase
from gateway.startup import load_config
from gateway.web.server import GatewayRunner
from tests.conftest import BackgroundLoop, free_port
from tests.serving import serve, stop

ACCOUNT = "123456789012"
BIN = Path(sys.executable).parent
RING_SECRET = "r" * 32


def _config(tmp_path: Path, port: int = 0, **extra: Any) -> Path:
    raw: dict[str, Any] = {
        "account_id": ACCOUNT,
        "listen": {"host": "127.0.0.1", "port": port or 8080},
        "audit": {"sink": "none"},
        "database": {"url": f"sqlite:///{tmp_path}/iam.db"},
        "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": RING_SECRET}}]},
    }
    raw.update(extra)
    path = tmp_path / "fedgate.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture()
def fedgate(capsys: pytest.CaptureFixture[str]) -> Callable[..., Ran]:
    """Run the ``fedgate`` command line in this process (its real entry point) and capture it."""

    def run(*args: str) -> Ran:
        capsys.readouterr()
        code = main(list(args))
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


def _created_key(out: str) -> tuple[str, str]:
    key = re.search(r"^AccessKeyId: (AKIA[A-Z2-7]{16})$", out, re.M)
    secret = re.search(r"^SecretAccessKey: (\S{40})$", out, re.M)
    assert key and secret, out
    return key.group(1), secret.group(1)


def _client(service: str, url: str, key: str, secret: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def _sts(port: int, key: str, secret: str) -> Any:
    return boto3.client(
        "sts",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def test_create_admin_key_works_and_survives_a_restart(tmp_path: Path, fedgate: Callable[..., Ran]) -> None:
    port = free_port()
    config = _config(tmp_path, port)
    made = fedgate("iam", "create-admin", "-c", str(config))
    assert made.returncode == 0, made.stderr
    assert f"arn:aws:iam::{ACCOUNT}:user/admin" in made.stdout
    key, secret = _created_key(made.stdout)
    for _ in range(2):  # a restart of the gateway process: the key is in the database, sealed
        process = serve([str(BIN / "fedgate"), "serve", "-c", str(config)], config, port)
        try:
            identity = _sts(port, key, secret).get_caller_identity()
        finally:
            stop(process)
        assert identity["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/admin"
        assert secret not in config.with_suffix(".log").read_text()
    # Again: refused unless --reuse is given (whoever made the user would become administrator).
    refused = fedgate("iam", "create-admin", "-c", str(config))
    assert refused.returncode == 2 and refused.stdout == ""
    assert (
        refused.stderr.count("\n") == 1 and "already exists" in refused.stderr and "--reuse" in refused.stderr
    )
    # With --reuse: the same user, a second key, and the earlier key named; a third is refused.
    again = fedgate("iam", "create-admin", "-c", str(config), "--reuse")
    assert again.returncode == 0 and "Reused user" in again.stdout
    assert f"Its earlier access keys are administrator keys now too: {key}" in again.stdout
    assert _created_key(again.stdout)[0] != key
    third = fedgate("iam", "create-admin", "-c", str(config), "--reuse")
    assert third.returncode == 2 and third.stdout == ""
    assert third.stderr.count("\n") == 1 and "already has 2 access keys" in third.stderr


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"keyring": None}, "needs a configured keyring"),
        ({"database": {}}, "needs a database shared with the gateway"),
        (
            {"users": [{"name": "admin", "policies": []}]},
            "user admin is declared in",
        ),
    ],
)
def test_create_admin_mistakes_are_one_line(
    tmp_path: Path, change: dict[str, Any], expected: str, fedgate: Callable[..., Ran]
) -> None:
    raw = yaml.safe_load(_config(tmp_path).read_text())
    for key, value in change.items():
        if value is None:
            raw.pop(key)
        else:
            raw[key] = value
    path = tmp_path / "other.yaml"
    path.write_text(yaml.safe_dump(raw))
    result = fedgate("iam", "create-admin", "-c", str(path))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr and "Traceback" not in result.stderr


def test_export_writes_configuration_that_loads_back(tmp_path: Path, fedgate: Callable[..., Ran]) -> None:
    config = _config(
        tmp_path,
        policies=[
            {
                "name": "from-yaml",
                "document": {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
                },
            }
        ],
    )
    read = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    db = IamDatabase.from_settings(
        DatabaseSettings.model_validate({"url": f"sqlite:///{tmp_path}/iam.db"}),
        account_id=ACCOUNT,
        keyring=KeyRing({"k": RING_SECRET.encode()}, "k"),
    )

    async def populate() -> None:
        await db.start()
        try:
            async with db.write() as tx:
                policy = await tx.policies.create("reader", document=json.dumps(read), path="/team/")
                group = await tx.groups.create("devs")
                await tx.attachments.attach("group", group.id, policy.arn)
                user = await tx.users.create("dev", tags={"team": "blue"})
                await tx.groups.add_member(group.id, user.id)
                await tx.inline_policies.put("user", user.id, "own", json.dumps(read))
                await tx.attachments.attach("user", user.id, f"arn:aws:iam::{ACCOUNT}:policy/from-yaml")
                await tx.access_keys.create(user.id, "s" * 40)
                role = await tx.roles.create("deployer", trust_policy=json.dumps(trust))
                await tx.inline_policies.put("role", role.id, "deploy", json.dumps(read))
        finally:
            await db.close()

    asyncio.run(populate())
    out = tmp_path / "exported.yaml"
    result = fedgate("iam", "export", "-c", str(config), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert "not exported: user dev: 1 access key(s)" in result.stderr
    text = out.read_text()
    assert "s" * 40 not in text and "secret" not in text.lower().replace("secrets stay", "")
    # The export merged into the file it came from loads through the configuration loader.
    merged = yaml.safe_load(config.read_text())
    exported = yaml.safe_load(text)
    assert exported["account_id"] == ACCOUNT
    for section in ("policies", "groups", "users", "roles"):
        merged[section] = merged.get(section, []) + exported[section]
    merged_path = tmp_path / "merged.yaml"
    merged_path.write_text(yaml.safe_dump(merged))
    loaded = load_config(merged_path)
    dev = next(u for u in loaded.users if u.name == "dev")
    assert dev.groups == ["devs"] and dev.managed_policies == ["from-yaml"] and dev.tags == {"team": "blue"}
    assert [g.managed_policies for g in loaded.groups] == [["reader"]]
    assert [r.name for r in loaded.roles] == ["deployer"] and loaded.roles[0].trust_policy == trust
    assert next(p for p in loaded.policies if p.name == "reader").path == "/team/"


def test_the_readme_bootstrap_on_the_iam_demo_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fedgate: Callable[..., Ran]
) -> None:
    """The README's first step, on config/iam-demo.yaml in a fresh working directory."""
    root = Path(__file__).parent.parent.parent
    config = tmp_path / "iam-demo.yaml"
    config.write_text((root / "config" / "iam-demo.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    assert fedgate("check-config", "-c", str(config)).returncode == 0
    made = fedgate("iam", "create-admin", "-c", str(config))
    assert made.returncode == 0, made.stderr
    readme = (root / "README.md").read_text()
    first_line = made.stdout.splitlines()[0]
    assert f"# {first_line}" in readme
    _created_key(made.stdout)
    assert (tmp_path / ".fedgate" / "iam-demo.db").exists()  # beside the configuration file


def _until(check: Callable[[], bool], what: str, within: float = 20.0) -> None:
    """Poll ``check`` from this thread (the gateway runs on the background loop); a bound against
    hanging, not a measurement."""
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"still not true after {within:.0f} s: {what}"
        time.sleep(0.05)


async def _serve_on(config: GatewayConfig, port: int) -> GatewayRunner:
    """A gateway on the port its configuration names (its demo upstream is itself, on that port)."""
    runner = GatewayRunner(create_app(config))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


def test_the_readme_journey_on_the_iam_demo_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fedgate: Callable[..., Ran],
    background_loop: BackgroundLoop,
) -> None:
    """The README's user journey: the bootstrap key creates alice in a group and her key, alice's
    key is allowed and denied on the proxy by her group's policy, then deactivated."""
    root = Path(__file__).parent.parent.parent
    port = free_port()
    config = tmp_path / "iam-demo.yaml"
    config.write_text((root / "config" / "iam-demo.yaml").read_text().replace("8080", str(port)))
    monkeypatch.chdir(tmp_path)
    admin_key, admin_secret = _created_key(fedgate("iam", "create-admin", "-c", str(config)).stdout)
    runner = background_loop.run(_serve_on(load_config(config), port))
    try:
        url = f"http://127.0.0.1:{port}"
        iam = _client("iam", url, admin_key, admin_secret)
        iam.create_user(UserName="alice")
        iam.create_group(GroupName="readers")
        read = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "s3:ListBucket"], "Resource": "*"}],
        }
        iam.put_group_policy(GroupName="readers", PolicyName="read", PolicyDocument=json.dumps(read))
        iam.add_user_to_group(UserName="alice", GroupName="readers")
        key = iam.create_access_key(UserName="alice")["AccessKey"]
        alice = _client("s3", url, key["AccessKeyId"], key["SecretAccessKey"])

        def listed() -> bool:
            try:
                alice.list_objects_v2(Bucket="demo-bucket")
            except ClientError:
                return False
            return True

        _until(listed, "alice may list")
        with pytest.raises(ClientError) as exc:
            alice.put_object(Bucket="demo-bucket", Key="notes.txt", Body=b"x")
        assert exc.value.response["Error"]["Code"] == "AccessDenied"
        iam.update_access_key(UserName="alice", AccessKeyId=key["AccessKeyId"], Status="Inactive")

        def refused() -> bool:
            try:
                alice.list_objects_v2(Bucket="demo-bucket")
            except ClientError as error:
                return str(error.response["Error"]["Code"]) == "InvalidAccessKeyId"
            return False

        _until(refused, "alice's key refused")
    finally:
        background_loop.run(runner.cleanup())
