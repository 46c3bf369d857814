"""The aws CLI against the IAM API: the commands a newcomer types first, and a refusal."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.flows.conftest import aws_cli
from tests.iam.api.conftest import ACCOUNT, Api


def _env(api: Api, tmp_path: Path) -> dict[str, str]:
    creds = api.credentials("admin")
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": creds["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
        "AWS_SESSION_TOKEN": creds["SessionToken"],
    }


def test_create_user_key_list_and_a_delete_conflict(api: Api, admin: Any, tmp_path: Path) -> None:
    env = _env(api, tmp_path)

    def iam(*args: str) -> subprocess.CompletedProcess[str]:
        command = [aws_cli(), "--endpoint-url", api.url, "--output", "json", "iam", *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)

    def ok(*args: str) -> Any:
        done = iam(*args)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else None

    user = ok("create-user", "--user-name", "cli-user", "--path", "/cli/")["User"]
    assert user["Arn"] == f"arn:aws:iam::{ACCOUNT}:user/cli/cli-user"
    key = ok("create-access-key", "--user-name", "cli-user")["AccessKey"]
    assert key["AccessKeyId"].startswith("AKIA") and len(key["SecretAccessKey"]) == 40
    listed = ok("list-users", "--path-prefix", "/cli/")["Users"]
    assert [u["UserName"] for u in listed] == ["cli-user"]

    refused = iam("delete-user", "--user-name", "cli-user")
    assert refused.returncode == 255  # the aws CLI (v1) exit status of a service error
    assert "An error occurred (DeleteConflict) when calling the DeleteUser operation" in refused.stderr
    assert "must delete access keys first" in refused.stderr

    # Each CLI start takes seconds: clean up with boto3.
    admin.delete_access_key(UserName="cli-user", AccessKeyId=key["AccessKeyId"])
    admin.delete_user(UserName="cli-user")
