"""``fedgate serve`` at rest: its resident memory (RSS) after a few proxied requests stays bounded.

The configuration is ``bench/proxy_rss_bench.py``'s (one process, memory store, no database, audit
sink ``none``, one S3 upstream in ``resign`` mode): what a proxy-only deployment runs. Nearly all of
a resting server's memory is the modules it imported, so this is the test that fails when a change
imports a heavy library a configuration does not use (redis-py with OpenTelemetry, Alembic,
pysaml2, asyncpg, boto3... each several MiB): see ``gateway.requires`` for where such an import
belongs. The figure is memory, not time; the bench prints it beside the peak of a 1 GiB PUT.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from aiohttp import web

from gateway.credentials import CredentialService, KeyRing, Revocations
from gateway.testing.uploads import upload_sink_config
from tests.conftest import BackgroundLoop, free_port, serve_handler, wait_until_listening
from tests.proxy.helpers import send, signed

ACCOUNT = "123456789012"
MIB = 1024 * 1024
#: The resting RSS allowed, in MiB: issue 15's 100 MB. fedgate rests at about 91.5 MiB on this
#: configuration (128 MiB before the imports followed the configuration, 99-103 MiB before lxml and
#: awscrt waited for the first request that needs them); the rest is the libraries this
#: configuration does use (see bench/README.md).
LIMIT_MIB = 100 * 1000 * 1000 / 1024 / 1024


@pytest.fixture()
def sink(background_loop: BackgroundLoop) -> Iterator[str]:
    """An upstream that reads and drops whatever body it is sent."""

    async def handle(request: web.Request) -> web.Response:
        async for _ in request.content.iter_chunked(MIB):
            pass
        return web.Response(text="ok")

    runner, port = background_loop.run(serve_handler(handle))
    yield f"http://127.0.0.1:{port}"
    background_loop.run(runner.cleanup())


def _status(pid: int) -> dict[str, int]:
    """The memory lines of ``/proc/PID/status``, in KiB."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name.startswith("Vm") or name.startswith("Rss"):
            found[name] = int(value.split()[0])
    return found


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_a_resting_server_holds_only_what_its_configuration_uses(sink: str, tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(48)
    config = tmp_path / "fedgate.yaml"
    config.write_text(yaml.safe_dump(upload_sink_config(secret, sink, host="localhost", account=ACCOUNT)))
    port = free_port()
    fedgate = str(Path(sys.executable).with_name("fedgate"))
    log = tmp_path / "fedgate.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [fedgate, "serve", "-c", str(config), "--port", str(port)], stdout=subprocess.DEVNULL, stderr=out
        )
    try:
        wait_until_listening(proc, port, log)
        issued = CredentialService(KeyRing({"rss": secret.encode()}, "rss"), Revocations.local()).issue(
            role_arn=f"arn:aws:iam::{ACCOUNT}:role/uploader", session_name="rss", duration_seconds=3600
        )
        creds = {
            "aws_access_key_id": issued.access_key_id,
            "aws_secret_access_key": issued.secret_access_key,
            "aws_session_token": issued.session_token,
        }
        # Answered requests mean start-up has finished; these are what a request loads.
        for i in range(8):
            target, headers = signed(
                creds,
                "PUT",
                f"/rss/small{i}",
                host=f"localhost:{port}",
                headers=[("Content-Length", "1024")],
                body=b"x" * 1024,
            )
            reply = send(port, "PUT", target, headers, b"x" * 1024)
            assert reply.status == 200, reply.body
        memory = _status(proc.pid)
        print(f"resting RSS {memory['VmRSS'] / 1024:.1f} MiB")
        assert memory["VmRSS"] < LIMIT_MIB * 1024, (
            f"fedgate serve rests at {memory['VmRSS'] / 1024:.1f} MiB, over {LIMIT_MIB:.1f} MiB (100 MB) "
            f"({memory}): has a change imported a library this configuration does not use? "
            "Compare `python -X importtime` of the server before and after it."
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    assert code == 0, log.read_text()
