"""``fedgate serve --workers 2`` as a subprocess: a 128 MiB upload streams through in bounded memory."""

from __future__ import annotations

import hashlib
import json
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from gateway.credentials import CredentialService, KeyRing, Revocations
from tests.conftest import BackgroundLoop, free_port, serve_handler, wait_until_listening
from tests.proxy.helpers import send, signed

ACCOUNT = "123456789012"
MIB = 1024 * 1024
SIZE = 128 * MIB
PIECE = b"0123456789abcdef" * 4096  # 64 KiB


def _pieces() -> Iterator[bytes]:
    for _ in range(SIZE // len(PIECE)):
        yield PIECE


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


@pytest.fixture()
def sink(background_loop: BackgroundLoop) -> Iterator[str]:
    """An upstream that hashes whatever body it is sent, without keeping it."""

    async def handle(request: web.Request) -> web.Response:
        digest = hashlib.sha256()
        size = 0
        async for piece in request.content.iter_chunked(MIB):
            digest.update(piece)
            size += len(piece)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    runner, port = background_loop.run(serve_handler(handle))
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


def _config(path: Path, secret: str, target: str) -> None:
    doc: dict[str, Any] = {
        "account_id": ACCOUNT,
        "log_level": "WARNING",
        "audit": {"sink": "none"},
        "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": secret}}]},
        # Workers share revocations through one database file (the in-memory default is refused).
        "database": {"url": f"sqlite:///{path.parent / 'iam.db'}"},
        "roles": [
            {
                "name": "big",
                "trust_policy": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Federated": "x"},
                            "Action": "sts:AssumeRoleWithWebIdentity",
                        }
                    ],
                },
                "policies": [
                    {
                        "name": "put",
                        "document": {
                            "Version": "2012-10-17",
                            "Statement": [
                                {
                                    "Effect": "Allow",
                                    "Action": "s3:PutObject",
                                    "Resource": "arn:aws:s3:::big/*",
                                }
                            ],
                        },
                    }
                ],
            }
        ],
        "upstreams": [
            {
                "name": "sink",
                "match": {"hosts": ["localhost"]},
                "target": target,
                "service": "s3",
                "mapping": "s3",
                "auth": "resign",
                "credentials": {"access_key_id": {"value": "AK"}, "secret_access_key": {"value": "SK"}},
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))


def test_large_upload_streams_through_workers_in_bounded_memory(sink: str, tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(48)
    config = tmp_path / "fedgate.yaml"
    _config(config, secret, sink)
    port = free_port()
    fedgate = str(Path(sys.executable).with_name("fedgate"))
    log = tmp_path / "fedgate.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [fedgate, "serve", "-c", str(config), "--port", str(port), "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=out,
        )
    try:
        wait_until_listening(proc, port, log)
        # The socket listens before the workers are forked: on a loaded machine a connection can
        # land in between, so wait for them rather than count at once.
        deadline = time.monotonic() + 20
        while len(workers := _children(proc.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(workers) == 2
        issued = CredentialService(KeyRing({"k": secret.encode()}, "k"), Revocations.local()).issue(
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/big", session_name="big", duration_seconds=3600
        )
        creds = {
            "aws_access_key_id": issued.access_key_id,
            "aws_secret_access_key": issued.secret_access_key,
            "aws_session_token": issued.session_token,
        }
        digest = hashlib.sha256()
        for piece in _pieces():
            digest.update(piece)
        expected = digest.hexdigest()
        # Small requests first, so each worker's baseline includes everything a request loads. The
        # kernel spreads new connections over the workers; 16 of them reach both but for odds of
        # 2 in 65,536.
        for i in range(16):
            target, headers = signed(
                creds,
                "PUT",
                f"/big/small{i}",
                host=f"localhost:{port}",
                headers=[("Content-Length", "1")],
                body=b"x",
            )
            assert send(port, "PUT", target, headers, b"x").status == 200
        before = [_peak_rss(pid) for pid in workers]
        target, headers = signed(
            creds,
            "PUT",
            "/big/large.bin",
            host=f"localhost:{port}",
            headers=[("Content-Length", str(SIZE))],
            payload_hash=expected,
        )
        reply = send(port, "PUT", target, headers, _pieces(), timeout=60)
        assert reply.status == 200, reply.body
        assert json.loads(reply.body) == {"size": SIZE, "sha256": expected}
        growth = max(_peak_rss(pid) - b for pid, b in zip(workers, before, strict=True))
        assert growth < 32 * MIB, (
            f"a worker's peak memory grew by {growth // MIB} MiB for a {SIZE // MIB} MiB upload"
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    assert code == 0
