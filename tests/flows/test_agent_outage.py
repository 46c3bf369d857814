"""``fedgate agent`` through a gateway outage: cached credentials until they stop being servable,
retries with backoff, a clear error for every SDK once nothing valid is left, recovery when the
gateway comes back on the same port, and no traceback in the agent's log.

The credentials last 900 s; the agent renews when less than 897 s remain and stops serving when
less than 892 s remain, so "expiry" comes about 8 s after issue instead of 15 minutes later.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import CredentialRetrievalError

from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop
from tests.flows.agent_process import client_env, run_js_caller_identity, start_agent, write_token
from tests.flows.conftest import ACCOUNT, gateway_config

KEYRING = {"active": "k1", "keys": [{"id": "k1", "secret": {"value": "outage-test-key-" + "x" * 32}}]}


async def _serve(config: GatewayConfig, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(create_app(config), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, int(runner.addresses[0][1])


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body = response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read().decode()
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def test_gateway_outage(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    down_issuer: OIDCTestIssuer,
    strict_issuer: OIDCTestIssuer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = gateway_config(issuer, down_issuer, strict_issuer, tmp_path / "audit.jsonl", keyring=KEYRING)
    runner, port = background_loop.run(_serve(config, 0))
    gateway_url = f"http://127.0.0.1:{port}"
    write_token(tmp_path / "app.jwt", issuer.mint())
    agent = start_agent(
        {
            "gateway": {"url": gateway_url, "timeout_seconds": 2},
            "listen": {"host": "127.0.0.1", "port": 0},
            "authorization_token_file": str(tmp_path / "run" / "token"),
            "refresh": {
                "renew_before": 897,
                "jitter": 0,
                "expiry_margin": 892,
                "retry_initial": 0.3,
                "retry_max": 1,
            },
            "roles": [
                {
                    "name": "app",
                    "role_arn": f"arn:aws:iam::{ACCOUNT}:role/app",
                    "session_name": "outage",
                    "duration_seconds": 900,
                    "source": {"type": "web_identity", "token_file": str(tmp_path / "app.jwt")},
                    "imds": {"host": "127.0.0.1", "port": 0},
                }
            ],
        },
        tmp_path,
    )
    env = client_env(
        tmp_path,
        AWS_CONTAINER_CREDENTIALS_FULL_URI=agent.url("app"),
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(agent.token_file),
        AWS_EC2_METADATA_DISABLED="true",
    )
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    auth = {"Authorization": agent.token_file.read_text()}

    def sts(session: boto3.Session) -> Any:
        return session.client("sts", endpoint_url=gateway_url, config=Config(retries={"max_attempts": 1}))

    try:
        agent.wait_for("app", lambda s: s["valid"], "first credentials")
        assert sts(boto3.Session()).get_caller_identity()["Arn"].endswith(":assumed-role/app/outage")

        background_loop.run(runner.cleanup())  # the gateway goes away
        status, cached = _get(agent.url("app"), auth)
        assert status == 200

        # Renewal fails and is retried with backoff; the cached credentials are still served.
        agent.wait_for("app", lambda s: s["failures"] >= 2, "failed renewals")
        held = agent.role_status("app")
        assert held["valid"] and "cannot reach the gateway" in held["last_error"]
        assert 0 <= held["next_attempt_in"] <= 1
        assert _get(agent.url("app"), auth)[1]["AccessKeyId"] == cached["AccessKeyId"]
        frozen = boto3.Session().get_credentials().get_frozen_credentials()
        assert frozen.access_key == cached["AccessKeyId"]

        # Past the margin: nothing valid is left, and every client hears why.
        agent.wait_for("app", lambda s: not s["valid"], "the cached credentials to run out", timeout=15)
        status, body = _get(agent.url("app"), auth)
        assert status == 503 and body["Code"] == "CredentialsUnavailable"
        assert "no valid credentials for role app" in body["Message"]
        assert "the cached credentials expire at" in body["Message"]
        assert "cannot reach the gateway" in body["Message"] and "AccessKeyId" not in body
        assert _get(agent.container + "/readyz")[0] == 503

        imds = agent.imds["app"]
        _, token = _get(f"{imds}/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"}, "PUT")
        status, body = _get(
            f"{imds}/latest/meta-data/iam/security-credentials/app", {"X-aws-ec2-metadata-token": token}
        )
        assert status == 200 and body["Code"] == "CredentialsUnavailable" and "AccessKeyId" not in body

        with pytest.raises(CredentialRetrievalError, match="no valid credentials for role app"):
            boto3.Session().get_credentials()
        failed = run_js_caller_identity(gateway_url, env)
        assert "error" in failed and "Arn" not in failed

        # The gateway comes back on the same address: the next retry succeeds.
        runner, _ = background_loop.run(_serve(config, port))
        agent.wait_for("app", lambda s: s["valid"] and s["failures"] == 0, "recovery", timeout=15)
        session = boto3.Session()
        assert sts(session).get_caller_identity()["Arn"].endswith(":assumed-role/app/outage")
        assert session.get_credentials().get_frozen_credentials().access_key != cached["AccessKeyId"]
    finally:
        code = agent.stop()
        background_loop.run(runner.cleanup())
    assert code == 0, agent.log()
    agent.assert_clean_log()
    messages = [json.loads(line)["message"] for line in agent.lines]
    assert any("getting credentials failed: cannot reach the gateway" in m for m in messages)
    assert any("serving the cached credentials until" in m for m in messages)
    assert any("(after " in m and "failed attempt(s))" in m for m in messages)
    assert any("SDKs get an error until the gateway answers" in m for m in messages)
