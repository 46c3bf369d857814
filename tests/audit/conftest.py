"""A private ``redis-server`` that a test may kill, restart empty, pause and resume.

The shared Redis at ``$REDIS_URL`` must never be stopped or paused, so fault tests start their own
server on a free port of 127.0.0.1, in a temporary directory, with persistence off
(``--save "" --appendonly no``), and kill it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port


class PrivateRedis:
    """One ``redis-server`` process owned by a test; :meth:`start` again reuses the port."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed: these fault tests run their own. Install it "
                "(`apt-get install redis-server`; .ci/run does) and run them again.",
                pytrace=False,
            )
        self._binary = binary
        self._workdir = workdir
        self.port = free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (empty: nothing is persisted) and wait until it answers PING."""
        argv = [
            self._binary,
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._workdir),
            "--logfile",
            str(self._workdir / "redis.log"),
        ]
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            with (
                contextlib.suppress(redis.RedisError, OSError),
                redis.Redis(port=self.port, socket_connect_timeout=0.5, socket_timeout=0.5) as client,
            ):
                if client.ping():
                    return
            time.sleep(0.05)
        self.kill()
        pytest.fail(f"redis-server did not start on port {self.port}; see {self._workdir / 'redis.log'}")

    def kill(self) -> None:
        """Stop the server at once (SIGKILL): everything it held is gone."""
        if self._proc is not None:
            self._proc.kill()  # SIGKILL ends a paused (SIGSTOP) process too
            self._proc.wait(10)
            self._proc = None

    def pause(self) -> None:
        """SIGSTOP: connections stay open, nothing is answered."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT after :meth:`pause`."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    """A started private Redis, killed after the test."""
    workdir = tmp_path / "redis"
    workdir.mkdir()
    server = PrivateRedis(workdir)
    server.start()
    try:
        yield server
    finally:
        server.kill()


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (a background task's progress); the per-test timeout bounds it."""
    while not condition():  # noqa: ASYNC110  # the sink's counters have no event to wait on
        await asyncio.sleep(0.01)
