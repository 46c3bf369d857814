"""``fedgate agent`` end to end: boto3, the aws CLI and the JS SDK v3 get and renew credentials
through the container credentials endpoint and IMDSv2, from a live gateway over TCP.

The gateway's roles allow the shortest session (900 s) and the agent renews when less than 897 s
(plus up to 1 s of jitter) remain, so it renews every few seconds and every test sees a renewal.
Everything binds to 127.0.0.1; the IMDS tests point ``AWS_EC2_METADATA_SERVICE_ENDPOINT`` at the
agent instead of setting ``AWS_EC2_METADATA_DISABLED``, so no request can reach a link-local address.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import CredentialRetrievalError

from gateway.testing import OIDCTestIssuer
from tests.conftest import read_until_closed
from tests.flows.agent_process import (
    FEDGATE,
    AgentProcess,
    client_env,
    run_js_caller_identity,
    start_agent,
    write_token,
)
from tests.flows.conftest import ACCOUNT, LiveGateway, aws_cli

APP = f"arn:aws:iam::{ACCOUNT}:role/app"
LONG = f"arn:aws:iam::{ACCOUNT}:role/long"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Token files, the agent's configuration and its authorization token."""
    return tmp_path_factory.mktemp("agent")


@pytest.fixture(scope="module")
def agent(gateway: LiveGateway, issuer: OIDCTestIssuer, workdir: Path) -> Iterator[AgentProcess]:
    """One agent serving two roles: ``app`` (container endpoint and IMDSv2) and ``long``."""
    write_token(workdir / "app.jwt", issuer.mint())
    write_token(workdir / "long.jwt", issuer.mint(sub="repo:acme/long"))
    config = {
        "gateway": {"url": gateway.url, "timeout_seconds": 5},
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
                "name": "app",
                "role_arn": APP,
                "session_name": "agent-app",
                "duration_seconds": 900,
                "source": {"type": "web_identity", "token_file": str(workdir / "app.jwt")},
                "imds": {"host": "127.0.0.1", "port": 0},
            },
            {
                "name": "long",
                "role_arn": LONG,
                "session_name": "agent-long",
                "duration_seconds": 900,
                "source": {"type": "web_identity", "token_file": str(workdir / "long.jwt")},
                "path": "/v1/credentials/long",
            },
        ],
    }
    process = start_agent(config, workdir)
    process.wait_for("app", lambda s: s["valid"], "first credentials for app")
    process.wait_for("long", lambda s: s["valid"], "first credentials for long")
    yield process
    assert process.stop() == 0, process.log()
    process.assert_clean_log()
    assert not process.token_file.exists(), "the agent removes its token file when it stops"


def _events(gateway: LiveGateway, name: str) -> list[dict[str, Any]]:
    lines = gateway.audit_path.read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["eventName"] == name]


def _last_caller_key(gateway: LiveGateway) -> str:
    """The access key that signed the latest GetCallerIdentity the gateway saw."""
    return str(_events(gateway, "GetCallerIdentity")[-1]["userIdentity"]["accessKeyId"])


def _container_env(agent: AgentProcess, home: Path, role: str = "app") -> dict[str, str]:
    return client_env(
        home,
        AWS_CONTAINER_CREDENTIALS_FULL_URI=agent.url(role),
        AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(agent.token_file),
        AWS_EC2_METADATA_DISABLED="true",
    )


def _imds_env(agent: AgentProcess, home: Path) -> dict[str, str]:
    # Metadata is not disabled here: the SDK's IMDS client must find the agent at this endpoint.
    return client_env(home, AWS_EC2_METADATA_SERVICE_ENDPOINT=agent.imds["app"] + "/")


def _use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def _sts(gateway: LiveGateway, session: boto3.Session) -> Any:
    return session.client("sts", endpoint_url=gateway.url, config=Config(retries={"max_attempts": 1}))


# --- boto3 ---------------------------------------------------------------------------------------


def test_boto3_container_endpoint_obtains_and_renews(
    gateway: LiveGateway, agent: AgentProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_env(monkeypatch, _container_env(agent, tmp_path))
    session = boto3.Session()
    sts = _sts(gateway, session)
    identity = sts.get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/agent-app"
    credentials = session.get_credentials()
    assert credentials.method == "container-role"
    first = credentials.get_frozen_credentials().access_key
    assert _last_caller_key(gateway) == first

    # The same client, later: botocore refreshes from the agent, which has renewed meanwhile.
    agent.wait_renewal("app")
    assert sts.get_caller_identity()["Arn"] == identity["Arn"]
    second = _last_caller_key(gateway)
    assert second != first
    assert credentials.get_frozen_credentials().access_key == second


def test_boto3_imds_obtains_and_renews(
    gateway: LiveGateway, agent: AgentProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_env(monkeypatch, _imds_env(agent, tmp_path))
    session = boto3.Session()
    assert session.get_credentials().method == "iam-role"
    identity = _sts(gateway, session).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/agent-app"
    first = _last_caller_key(gateway)

    agent.wait_renewal("app")
    # botocore stretches IMDS credentials' expiry on its own ("static stability"), so a new
    # session is what asks IMDS again.
    again = boto3.Session()
    _sts(gateway, again).get_caller_identity()
    assert _last_caller_key(gateway) != first
    assert again.get_credentials().get_frozen_credentials().access_key == _last_caller_key(gateway)


def test_several_roles_per_agent(
    gateway: LiveGateway, agent: AgentProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_env(monkeypatch, _container_env(agent, tmp_path, role="long"))
    identity = _sts(gateway, boto3.Session()).get_caller_identity()
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/long/agent-long"


# --- the aws CLI and the JS SDK ------------------------------------------------------------------


def _cli_caller(gateway: LiveGateway, env: dict[str, str]) -> dict[str, Any]:
    run = subprocess.run(
        [aws_cli(), "sts", "get-caller-identity", "--endpoint-url", gateway.url, "--output", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("transport", ["container", "imds"])
def test_aws_cli_obtains_and_renews(
    gateway: LiveGateway, agent: AgentProcess, tmp_path: Path, transport: str
) -> None:
    env = _container_env(agent, tmp_path) if transport == "container" else _imds_env(agent, tmp_path)
    identity = _cli_caller(gateway, env)
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/agent-app"
    first = _last_caller_key(gateway)
    agent.wait_renewal("app")
    assert _cli_caller(gateway, env)["Arn"] == identity["Arn"]
    assert _last_caller_key(gateway) != first


@pytest.mark.parametrize("transport", ["container", "imds"])
def test_js_sdk_obtains_and_renews(
    gateway: LiveGateway, agent: AgentProcess, tmp_path: Path, transport: str
) -> None:
    env = _container_env(agent, tmp_path) if transport == "container" else _imds_env(agent, tmp_path)
    first = run_js_caller_identity(gateway.url, env)
    assert first.get("Arn") == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/agent-app", first
    assert first["Account"] == ACCOUNT
    assert first["AccessKeyId"] == _last_caller_key(gateway)
    agent.wait_renewal("app")
    second = run_js_caller_identity(gateway.url, env)
    assert second.get("Arn") == first["Arn"], second
    assert second["AccessKeyId"] != first["AccessKeyId"]
    assert second["AccessKeyId"] == _last_caller_key(gateway)


# --- token rotation ------------------------------------------------------------------------------


def test_rotated_token_file_is_used_at_next_renewal(
    gateway: LiveGateway, issuer: OIDCTestIssuer, agent: AgentProcess, workdir: Path
) -> None:
    def last_subject() -> str:
        mine = [
            e
            for e in _events(gateway, "AssumeRoleWithWebIdentity")
            if (e.get("requestParameters") or {}).get("roleSessionName") == "agent-app"
        ]
        return str(mine[-1]["userIdentity"]["userName"])

    assert last_subject() == issuer.subject
    write_token(workdir / "app.jwt", issuer.mint(sub="repo:acme/rotated"))
    agent.wait_renewal("app")
    agent.wait_renewal("app")  # the first may have read the file just before it was replaced
    assert last_subject() == "repo:acme/rotated"

    # A token the role does not trust: renewal fails (the file is read each time) while the
    # cached credentials are still served; a good token again and renewals resume.
    write_token(workdir / "app.jwt", issuer.mint(sub="repo:other/app"))
    agent.wait_for("app", lambda s: s["failures"] >= 1, "a refused renewal")
    status = agent.role_status("app")
    assert status["valid"] and "AccessDenied" in status["last_error"]
    write_token(workdir / "app.jwt", issuer.mint())
    agent.wait_for("app", lambda s: s["failures"] == 0 and s["valid"], "renewals to resume")


# --- refusals ------------------------------------------------------------------------------------


def _get(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_container_endpoint_requires_the_authorization_token(
    gateway: LiveGateway, agent: AgentProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, body = _get(agent.url("app"))
    assert status == 401
    assert json.loads(body)["Code"] == "Unauthorized" and "AccessKeyId" not in body
    status, body = _get(agent.url("app"), {"Authorization": "not-the-token"})
    assert status == 401 and "does not match" in json.loads(body)["Message"]
    token = agent.token_file.read_text()
    assert (agent.token_file.stat().st_mode & 0o777) == 0o600
    status, body = _get(agent.url("app"), {"Authorization": token})
    assert status == 200 and json.loads(body)["AccessKeyId"].startswith("ASIA")
    # A page on another origin reaching the agent through DNS rebinding names its own host.
    status, _ = _get(agent.url("app"), {"Authorization": token, "Host": "attacker.example"})
    assert status == 403

    # boto3 given the wrong token gets no credentials.
    env = _container_env(agent, tmp_path)
    env.pop("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE")
    env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "wrong"
    _use_env(monkeypatch, env)
    with pytest.raises(CredentialRetrievalError, match="401") as info:
        botocore.session.get_session().get_credentials()
    assert token not in str(info.value)


def test_imdsv1_and_proxied_requests_are_refused(agent: AgentProcess) -> None:
    base = agent.imds["app"]
    listing = f"{base}/latest/meta-data/iam/security-credentials/"
    status, body = _get(listing)  # IMDSv1: no session token
    assert status == 401 and "IMDSv1" in body
    status, _ = _get(listing, {"X-aws-ec2-metadata-token": "made-up"})
    assert status == 401

    ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    assert _get(f"{base}/latest/api/token", method="PUT")[0] == 400  # no TTL
    for bad in ("0", "21601", "ten", "-5"):
        assert (
            _get(f"{base}/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": bad}, "PUT")[0] == 400
        )
    assert _get(f"{base}/latest/api/token", ttl)[0] == 405  # a GET cannot mint a token
    assert _get(f"{base}/latest/api/token", {**ttl, "X-Forwarded-For": "203.0.113.9"}, "PUT")[0] == 403

    status, token = _get(f"{base}/latest/api/token", ttl, "PUT")
    assert status == 200
    session = {"X-aws-ec2-metadata-token": token}
    assert _get(listing, session) == (200, "app")
    status, body = _get(listing + "app", session)
    document = json.loads(body)
    assert status == 200 and document["Code"] == "Success" and document["Type"] == "AWS-HMAC"
    assert set(document) == {
        "Code",
        "LastUpdated",
        "Type",
        "AccessKeyId",
        "SecretAccessKey",
        "Token",
        "Expiration",
    }
    assert _get(listing + "app", {**session, "X-Forwarded-For": "10.0.0.1"})[0] == 403
    assert _get(listing + "other-role", session)[0] == 404
    assert _get(listing + "app", session, "POST")[0] == 405


# --- credential_process, status ------------------------------------------------------------------


def test_credential_process(gateway: LiveGateway, agent: AgentProcess, workdir: Path, tmp_path: Path) -> None:
    config = str(workdir / "agent.yaml")
    direct = subprocess.run(
        [FEDGATE, "agent", "credential-process", "-c", config, "--role", "app"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert direct.returncode == 0, direct.stderr
    printed = json.loads(direct.stdout)
    assert set(printed) == {"Version", "AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert printed["Version"] == 1

    # An SDK profile whose credential_process asks the running agent (its port was picked at
    # start, hence --listen; a real configuration names a fixed port).
    listen = agent.container.removeprefix("http://")
    (tmp_path / "aws-config").write_text(
        "[profile agent]\n"
        f"credential_process = {FEDGATE} agent credential-process -c {config} --role long --from-agent "
        f"--listen {listen}\n"
    )
    env = client_env(tmp_path, AWS_EC2_METADATA_DISABLED="true", AWS_PROFILE="agent")
    identity = _cli_caller(gateway, env)
    assert identity["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/long/agent-long"

    several = subprocess.run(
        [FEDGATE, "agent", "credential-process", "-c", config], capture_output=True, text=True, timeout=60
    )
    assert several.returncode == 2 and several.stdout == ""
    assert several.stderr.strip().splitlines() == [
        "fedgate agent credential-process: --role: the configuration serves several roles (app, long); "
        "name one"
    ]


def test_status_line_and_health(agent: AgentProcess) -> None:
    status, text = _get(agent.container + "/status")
    lines = text.splitlines()
    assert status == 200 and len(lines) == 2
    assert lines[0].startswith(f"app ({APP}): valid until ") and "renewal(s)" in lines[0]
    assert lines[1].startswith(f"long ({LONG}): valid until ")
    assert _get(agent.container + "/readyz")[0] == 200
    health = agent.health()
    assert health["status"] == "ok" and health["roles"]["app"]["source"].startswith("web identity token ")
    assert "AccessKeyId" not in json.dumps(health) and "SecretAccessKey" not in text


def _raw(url: str, request: bytes) -> bytes:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        return read_until_closed(sock)


@pytest.mark.parametrize("where", ["container", "imds"])
def test_malformed_requests_never_echo_or_log_the_token(agent: AgentProcess, where: str) -> None:
    token = agent.token_file.read_text()
    base = agent.container if where == "container" else agent.imds["app"]
    seen = len(agent.lines)
    for header in (
        f"Authorization: {token}\x00",
        f"X-aws-ec2-metadata-token: {token}\x7f",
        "X: " + token * 400,
    ):
        answer = _raw(base, f"GET /roles/app HTTP/1.1\r\nHost: 127.0.0.1\r\n{header}\r\n\r\n".encode())
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.split(b" ")[1] in (b"400", b"431"), answer[:200]
        assert token.encode() not in answer
        if where == "container":
            assert json.loads(body)["Code"] in ("BadRequest", "RequestHeaderSectionTooLarge")
    agent.wait_for("app", lambda s: True, "the agent to log the refusals")
    assert not any(token in line for line in agent.lines[seen:])
    assert "Traceback" not in "\n".join(agent.lines[seen:])
