"""``fedgate agent`` with an access-key source: a fedgate IAM user's long-term key, kept by the
agent, signs AssumeRole; the workload's boto3 gets (and, with the shortest session, renews) the
role's session credentials from the container endpoint, never the key itself. A role whose trust
policy does not name the user is refused, in one line of the agent's status, with no traceback."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.conftest import BackgroundLoop, config_from, serve_app
from tests.flows.agent_process import AgentProcess, start_agent

ACCOUNT = "123456789012"
KEY_ID = "AKIAAGENTEXAMPLE0001"
SECRET = "agent-user-secret-" + "s" * 22
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/hosts/build-host"
V = "2012-10-17"


@pytest.fixture(scope="module")
def gateway_url(background_loop: BackgroundLoop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A gateway whose config declares the user (its key by reference) and a role trusting it."""
    tmp = tmp_path_factory.mktemp("agent-key-gateway")
    config = config_from(
        {
            "account_id": ACCOUNT,
            "database": {"url": f"sqlite:///{tmp}/iam.db"},
            "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": "k" * 32}}]},
            "users": [
                {
                    "name": "build-host",
                    "path": "/hosts/",
                    "policies": [
                        {
                            "name": "assume",
                            "document": {
                                "Version": V,
                                "Statement": [
                                    {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
                                ],
                            },
                        }
                    ],
                    "access_keys": [{"id": KEY_ID, "secret": {"value": SECRET}}],
                }
            ],
            "roles": [
                {
                    "name": "builder",
                    "trust_policy": {
                        "Version": V,
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": USER_ARN},
                                "Action": "sts:AssumeRole",
                                "Condition": {"StringEquals": {"sts:ExternalId": "ci-7"}},
                            }
                        ],
                    },
                },
                {
                    "name": "elsewhere",
                    "trust_policy": {
                        "Version": V,
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/someone-else"},
                                "Action": "sts:AssumeRole",
                            }
                        ],
                    },
                },
            ],
        }
    )
    runner, port, _ = background_loop.run(serve_app(config))
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


@pytest.fixture(scope="module")
def agent(gateway_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgentProcess]:
    workdir = tmp_path_factory.mktemp("agent-key")
    secret_file = workdir / "key-secret"
    secret_file.write_text(SECRET + "\n")
    source = {"type": "access_key", "access_key_id": KEY_ID, "secret_access_key": {"file": str(secret_file)}}
    config = {
        "gateway": {"url": gateway_url, "timeout_seconds": 5},
        "listen": {"host": "127.0.0.1", "port": 0},
        "authorization_token_file": str(workdir / "run" / "token"),
        "refresh": {
            "renew_before": 897,
            "jitter": 1,
            "expiry_margin": 60,
            "retry_initial": 0.2,
            "retry_max": 1,
        },
        "roles": [
            {
                "name": "builder",
                "role_arn": f"arn:aws:iam::{ACCOUNT}:role/builder",
                "session_name": "build-host",
                "duration_seconds": 900,
                "source": {**source, "external_id": "ci-7"},
            },
            {
                "name": "elsewhere",
                "role_arn": f"arn:aws:iam::{ACCOUNT}:role/elsewhere",
                "duration_seconds": 900,
                "source": source,
            },
        ],
    }
    process = start_agent(config, workdir)
    process.wait_for("builder", lambda s: s["valid"], "first credentials for builder")
    yield process
    assert process.stop() == 0, process.log()
    process.assert_clean_log()
    assert SECRET not in process.log()


def _container_credentials(agent: AgentProcess, role: str) -> dict[str, Any]:
    request = urllib.request.Request(agent.url(role), headers={"Authorization": agent.token_file.read_text()})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return dict(json.loads(answer.read()))


def test_the_workload_gets_the_roles_session_not_the_key(agent: AgentProcess, gateway_url: str) -> None:
    assert agent.role_status("builder")["source"] == f"access key {KEY_ID}"
    first = _container_credentials(agent, "builder")
    assert first["AccessKeyId"].startswith("ASIA") and first["AccessKeyId"] != KEY_ID
    sts = boto3.client(
        "sts",
        endpoint_url=gateway_url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
        aws_access_key_id=first["AccessKeyId"],
        aws_secret_access_key=first["SecretAccessKey"],
        aws_session_token=first["Token"],
    )
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/builder/build-host"
    # The shortest session renews every few seconds: a new AssumeRole, signed with the key again.
    agent.wait_for(
        "builder", lambda s: s["valid"] and s["renewals"] >= 2, "a renewal signed with the access key"
    )
    assert _container_credentials(agent, "builder")["AccessKeyId"] != first["AccessKeyId"]


def test_a_role_that_does_not_trust_the_user_is_refused_by_name(agent: AgentProcess) -> None:
    agent.wait_for(
        "elsewhere",
        lambda s: not s["valid"] and "AccessDenied" in (s.get("last_error") or ""),
        "the refusal of a role that does not trust the user",
    )
