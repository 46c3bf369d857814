"""One base URL (``AWS_ENDPOINT_URL``) for STS, IAM and a catch-all S3 upstream, with the aws CLI.

Requests are routed by the service they are signed for (unsigned Query calls go to STS), so an
upstream that matches every host and path takes S3 only; the probes stay fedgate's.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.testing import OIDCTestIssuer
from tests.conftest import BackgroundLoop
from tests.conftest import serve_app as start_gateway
from tests.proxy.clients import client_env, run
from tests.proxy.conftest import BUCKET, ROLE, Moto, proxy_config


@pytest.fixture(scope="module")
def endpoint(
    background_loop: BackgroundLoop,
    issuer: OIDCTestIssuer,
    moto: Moto,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """fedgate whose only upstream (S3, to moto) matches every host and path."""
    config = proxy_config(issuer, moto.url, tmp_path_factory.mktemp("audit") / "audit.jsonl")
    catch_all = config.upstreams[0].model_copy(
        update={"match": config.upstreams[0].match.model_copy(update={"hosts": []})}
    )
    runner, port, _ = background_loop.run(start_gateway(config.model_copy(update={"upstreams": [catch_all]})))
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


def _aws(endpoint: str, env: dict[str, str], *args: str) -> dict[str, object]:
    done = run(["aws", *args, "--output", "json"], {**env, "AWS_ENDPOINT_URL": endpoint})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout) if done.stdout.strip() else {}  # type: ignore[no-any-return]


def test_sts_iam_and_s3_on_one_url(endpoint: str, issuer: OIDCTestIssuer, moto: Moto, tmp_path: Path) -> None:
    anonymous = client_env({"aws_access_key_id": "unused", "aws_secret_access_key": "unused"}, tmp_path)
    token = tmp_path / "token"
    token.write_text(issuer.mint())
    assumed = _aws(
        endpoint, anonymous, "sts", "assume-role-with-web-identity", "--role-arn", ROLE,
        "--role-session-name", "one-url", "--web-identity-token", f"file://{token}",
    )  # fmt: skip
    creds = assumed["Credentials"]
    assert isinstance(creds, dict)
    env = client_env(
        {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        },
        tmp_path,
    )
    identity = _aws(endpoint, env, "sts", "get-caller-identity")
    assert str(identity["Arn"]).endswith(":assumed-role/s3-app/one-url")
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}
    policy = json.dumps({"Version": "2012-10-17", "Statement": [statement]})
    simulated = _aws(
        endpoint,
        env,
        "iam",
        "simulate-custom-policy",
        "--policy-input-list",
        policy,
        "--action-names",
        "s3:GetObject",
    )
    assert simulated["EvaluationResults"][0]["EvalDecision"] == "allowed"  # type: ignore[index]
    body = tmp_path / "body.txt"
    body.write_bytes(b"one url for everything")
    _aws(
        endpoint,
        env,
        "s3api",
        "put-object",
        "--bucket",
        BUCKET,
        "--key",
        "public/one-url.txt",
        "--body",
        str(body),
    )
    assert (
        moto.client().get_object(Bucket=BUCKET, Key="public/one-url.txt")["Body"].read() == body.read_bytes()
    )
    for probe in ("/healthz", "/readyz"):
        with urllib.request.urlopen(endpoint + probe, timeout=10) as response:
            assert response.status == 200
