"""``fedgate serve`` run as an operator runs it: HTTPS from rotating files, SIGHUP reloads, access log.

Each test starts a real ``fedgate serve`` subprocess on a free loopback port and talks to it with
boto3 (and plain sockets where the certificate itself is the subject).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from fedgate_devissuer.issuer import DevIssuer, DevIssuerSettings
from gateway.credentials import CredentialService, KeyRing, Revocations
from gateway.testing.tls import TestCA
from tests.conftest import BackgroundLoop, free_port, wait_until_listening
from tests.proxy.helpers import send, signed

ACCOUNT = "123456789012"
FEDGATE = str(Path(sys.executable).with_name("fedgate"))


def _boto(service: str, endpoint: str, creds: dict[str, str] | None = None, **kw: Any) -> Any:
    session = boto3.session.Session(
        aws_access_key_id=(creds or {}).get("aws_access_key_id", "AKIDEXAMPLE"),
        aws_secret_access_key=(creds or {}).get("aws_secret_access_key", "unused"),
        aws_session_token=(creds or {}).get("aws_session_token"),
        region_name="us-east-1",
    )
    return session.client(
        service, endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}, read_timeout=30), **kw
    )


@pytest.fixture(autouse=True)
def _no_instance_metadata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)


class Server:
    """A ``fedgate serve`` subprocess and its log."""

    def __init__(self, config: Path, port: int, *extra: str) -> None:
        self.config, self.port, self.log = config, port, config.with_suffix(".log")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [FEDGATE, "serve", "-c", str(config), "--port", str(port), *extra],
                stdout=subprocess.DEVNULL,
                stderr=out,
            )
        wait_until_listening(self.proc, port, self.log, within=30)

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines() if line.startswith("{")]

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


def _eventually(check: Any, what: str, within: float = 20) -> Any:
    deadline = time.monotonic() + within
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _peer_certificate(port: int, ca: Path) -> bytes:
    context = ssl.create_default_context(cafile=str(ca))
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def _der(pem_file: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem_file.read_text())


def _mint(secret: str, role: str) -> dict[str, str]:
    issued = CredentialService(KeyRing({"k": secret.encode()}, "k"), Revocations.local()).issue(
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/{role}", session_name=role, duration_seconds=3600
    )
    return {
        "aws_access_key_id": issued.access_key_id,
        "aws_secret_access_key": issued.secret_access_key,
        "aws_session_token": issued.session_token,
    }


def test_https_from_files_that_rotate(tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(48)
    with TestCA() as ca:
        first_cert, first_key = ca.issue()
        cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
        shutil.copy(first_cert, cert)
        shutil.copy(first_key, key)
        port = free_port()
        config = tmp_path / "fedgate.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "account_id": ACCOUNT,
                    "listen": {
                        "port": port,
                        "tls": {"cert_file": str(cert), "key_file": str(key), "reload_interval_seconds": 0.2},
                    },
                    "audit": {"sink": "none"},
                    "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": secret}}]},
                }
            )
        )
        server = Server(config, port)
        try:
            endpoint = f"https://127.0.0.1:{port}"
            sts = _boto("sts", endpoint, _mint(secret, "app"), verify=str(ca.cert_file))
            assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{ACCOUNT}:assumed-role/app/app"
            assert _peer_certificate(port, ca.cert_file) == _der(first_cert)
            # The container health check follows listen.tls.
            probe = [sys.executable, "-m", "gateway.healthcheck", "-c", str(config)]
            assert subprocess.run(probe, capture_output=True, timeout=30, check=False).returncode == 0

            # A half-written pair is not loaded: the old certificate stays.
            cert.write_text("-----BEGIN CERTIFICATE-----\nnot yet\n")
            _eventually(
                lambda: any("TLS certificate not reloaded" in line["message"] for line in server.lines()),
                "the broken pair was not reported",
            )
            assert _peer_certificate(port, ca.cert_file) == _der(first_cert)

            # Renewed: new connections get the new certificate, without a restart.
            second_cert, second_key = ca.issue()
            shutil.copy(second_key, key)
            shutil.copy(second_cert, cert)
            _eventually(
                lambda: _peer_certificate(port, ca.cert_file) == _der(second_cert),
                "the renewed certificate was not served",
            )
            assert sts.get_caller_identity()["Account"] == ACCOUNT
        finally:
            assert server.stop() == 0


def test_unloadable_tls_files_are_one_line_at_start(tmp_path: Path) -> None:
    config = tmp_path / "fedgate.yaml"
    missing = tmp_path / "missing.pem"
    config.write_text(
        yaml.safe_dump(
            {
                "account_id": ACCOUNT,
                "listen": {"port": 0, "tls": {"cert_file": str(missing), "key_file": str(missing)}},
            }
        )
    )
    done = subprocess.run(
        [FEDGATE, "serve", "-c", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "listen.tls: cannot load" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.fixture()
def slow_upstream(background_loop: BackgroundLoop) -> Iterator[str]:
    """An upstream that takes two seconds to answer."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        await asyncio.sleep(2.0)
        return web.Response(text="slow ok")

    async def start() -> tuple[web.AppRunner, int]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        return runner, runner.addresses[0][1]

    runner, port = background_loop.run(start())
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


def _trust(issuer_id: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer_id}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }


def _reload_config(
    tmp_path: Path, port: int, secret: str, upstream: str, *, new_role: bool
) -> dict[str, Any]:
    issuer = f"http://127.0.0.1:{port}/dev-issuer"
    trust = _trust(f"127.0.0.1:{port}/dev-issuer")
    roles: list[dict[str, Any]] = [
        {
            "name": "app",
            "trust_policy": trust,
            "policies": [
                {
                    "name": "get",
                    "document": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::slow/*"}
                        ],
                    },
                }
            ],
        }
    ]
    if new_role:
        roles.append({"name": "newcomer", "trust_policy": trust})
    return {
        "account_id": ACCOUNT,
        "log_level": "INFO",
        "audit": {"sink": "none"},
        "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": secret}}]},
        "database": {"url": f"sqlite:///{tmp_path / 'iam.db'}"},
        "access_log": {"enabled": True, "path": str(tmp_path / "access.log")},
        "dev_issuer": {"issuer": issuer, "key_file": str(tmp_path / "dev.pem"), "audience": "demo"},
        "providers": [{"type": "oidc", "issuer": issuer, "audiences": ["demo"], "algorithms": ["ES256"]}],
        "roles": roles,
        "upstreams": [
            {
                "name": "slow",
                "match": {"hosts": ["localhost"]},
                "target": upstream,
                "service": "s3",
                "mapping": "s3",
                "auth": "resign",
                "credentials": {"access_key_id": {"value": "AK"}, "secret_access_key": {"value": "SK"}},
            }
        ],
    }


def test_sighup_reloads_a_good_configuration_and_keeps_the_old_on_a_bad_one(
    tmp_path: Path, slow_upstream: str
) -> None:
    secret = secrets.token_urlsafe(48)
    port = free_port()
    raw = _reload_config(tmp_path, port, secret, slow_upstream, new_role=False)
    config = tmp_path / "fedgate.yaml"
    config.write_text(yaml.safe_dump(raw))
    server = Server(config, port, "--workers", "2")
    try:
        endpoint = f"http://127.0.0.1:{port}"
        issuer = DevIssuer(DevIssuerSettings.model_validate(raw["dev_issuer"]))
        token = issuer.mint("alice")
        sts = _boto("sts", endpoint)
        newcomer = f"arn:aws:iam::{ACCOUNT}:role/newcomer"

        def assume(role: str) -> dict[str, Any]:
            return dict(
                sts.assume_role_with_web_identity(
                    RoleArn=role, RoleSessionName="sess", WebIdentityToken=token
                )
            )

        with pytest.raises(ClientError) as refused:
            assume(newcomer)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"

        # A slow proxied request is in flight while the configuration changes under it.
        creds = _mint(secret, "app")
        target, headers = signed(creds, "GET", "/slow/object", host=f"localhost:{port}")
        answers: list[int] = []
        slow = threading.Thread(target=lambda: answers.append(send(port, "GET", target, headers).status))
        slow.start()
        time.sleep(0.5)  # let it reach the upstream (the test does not depend on the exact moment)
        config.write_text(
            yaml.safe_dump(_reload_config(tmp_path, port, secret, slow_upstream, new_role=True))
        )
        server.proc.send_signal(signal.SIGHUP)
        slow.join(30)
        assert answers == [200]

        # Every worker reloaded: new connections, spread over both, may all assume the new role.
        _eventually(
            lambda: sum(line["message"] == "configuration reloaded" for line in server.lines()) == 2,
            "both workers did not report the reload",
        )
        for _ in range(8):
            assert assume(newcomer)["AssumedRoleUser"]["Arn"].endswith(":assumed-role/newcomer/sess")

        # A broken file: refused in one line per worker, the running configuration kept.
        config.write_text("account_id: [not, valid\n")
        server.proc.send_signal(signal.SIGHUP)
        refusals = _eventually(
            lambda: [line for line in server.lines() if "reload refused" in line["message"]] or None,
            "the refusal was not logged",
        )
        _eventually(
            lambda: len([ln for ln in server.lines() if "reload refused" in ln["message"]]) == 2,
            "both workers did not refuse the broken file",
        )
        refusals = [line for line in server.lines() if "reload refused" in line["message"]]
        assert all("\n" not in line["message"] for line in refusals)
        assert "not valid YAML" in refusals[0]["message"]
        assert assume(newcomer)["AssumedRoleUser"]["Arn"].endswith(":assumed-role/newcomer/sess")

        # A setting that needs a restart is named, not silently ignored.
        changed = _reload_config(tmp_path, port, secret, slow_upstream, new_role=True)
        changed["store"] = {"backend": "memory", "prefix": "other:"}
        config.write_text(yaml.safe_dump(changed))
        server.proc.send_signal(signal.SIGHUP)
        warned = _eventually(
            lambda: [ln for ln in server.lines() if ln["message"].startswith("configuration reloaded;")],
            "the restart-only change was not reported",
        )
        assert warned[0]["restart_needed"] == ["store"]
    finally:
        code = server.stop()
    assert code == 0

    # The access log: one JSON line per request, no secret from a header or a signed URL.
    lines = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
    assert {"POST", "GET"} <= {line["method"] for line in lines}
    slow_line = next(line for line in lines if line["path"] == "/slow/object")
    assert slow_line["status"] == 200 and slow_line["duration_ms"] >= 1000
    text = (tmp_path / "access.log").read_text()
    for secret_value in (creds["aws_session_token"], creds["aws_secret_access_key"], token):
        assert secret_value not in text
    assert "Signature=" not in text and "Authorization" not in text


def test_the_access_log_redacts_presigned_urls() -> None:
    from gateway.web.accesslog import redacted_query

    query = (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=ASIA%2F20260101%2Fus-east-1%2Fs3%2Faws4_request"
        "&X-Amz-Security-Token=IQoJ&X-Amz-Signature=abc&prefix=logs%2F&code=xyz&SAMLResponse=PHNhbWw"
    )
    assert redacted_query(query) == (
        "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Security-Token=REDACTED"
        "&X-Amz-Signature=REDACTED&prefix=logs%2F&code=REDACTED&SAMLResponse=REDACTED"
    )
