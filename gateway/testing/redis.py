"""A private Redis server for fault tests and benchmarks (no pytest needed to import this module).

:class:`RedisServer` runs ``redis-server`` on a free loopback port, in a temporary directory, with
no persistence (``--save "" --appendonly no``), so a test can do to it what it must never do to a
shared server: stop it, restart it empty on the same port, pause it (``SIGSTOP``) and resume it::

    with RedisServer(password="s3cret") as server:
        url = server.url                 # redis://:s3cret@127.0.0.1:PORT/0
        server.pause(); server.resume()  # a hung server, then a live one again
        server.restart()                 # the same port, every key gone
        server.stop()                    # refused connections until start()

:func:`backdate_generation` makes a store look as if it had been running for a while (its
generation began at ``started``), so assertions minted moments ago are not refused as possibly
spent before it: the situation of a gateway that has been up for hours, which tests cannot wait for.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self, final

import redis

from gateway.store.base import GENERATION_KEY

__all__ = ["RedisServer", "RedisServerError", "backdate_generation"]

_START_TIMEOUT = 10.0


class RedisServerError(RuntimeError):
    """``redis-server`` is missing or would not start; the message says how to fix it."""


@final
class RedisServer:
    """One ``redis-server`` process owned by the caller (see the module docstring)."""

    def __init__(self, *, password: str | None = None, executable: str | None = None) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisServerError(
                "redis-server is not installed (fault tests start their own): "
                "apt-get install redis-server, or put it on PATH"
            )
        self._executable = found
        self.password = password
        self._dir = Path(tempfile.mkdtemp(prefix="fedgate-redis-"))
        self.port = _free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._paused = False

    @property
    def url(self) -> str:
        """``redis://[:password@]127.0.0.1:PORT/0``."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the server (empty) and wait until it answers ``PING``."""
        if self._process is not None:
            raise RedisServerError("the server is already running")
        args = [
            self._executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self._dir),
            "--logfile", str(self._dir / "redis.log"),
            "--protected-mode", "no",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        # S603: every argument is ours (the redis-server found on PATH, fixed options, our port).
        self._process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)  # noqa: S603
        self._paused = False
        deadline = time.monotonic() + _START_TIMEOUT
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                log = (self._dir / "redis.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RedisServerError(f"redis-server did not start on port {self.port}:\n{log}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop the server (resuming it first if paused); its data is gone (no persistence)."""
        process, self._process = self._process, None
        if process is None:
            return
        if self._paused:
            os.kill(process.pid, signal.SIGCONT)
            self._paused = False
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def restart(self) -> None:
        """Stop, then start again empty on the same port: a Redis restart without persistence."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """``SIGSTOP`` the server: connections stay open and nothing answers (a hung server)."""
        if self._process is None:
            raise RedisServerError("the server is not running")
        os.kill(self._process.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """``SIGCONT`` a paused server; it answers again, with its data intact."""
        if self._process is not None and self._paused:
            os.kill(self._process.pid, signal.SIGCONT)
            self._paused = False

    def client(self) -> redis.Redis:
        """A synchronous client of this server (short timeouts)."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def close(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False


def backdate_generation(client: redis.Redis, prefix: str, started: float) -> None:
    """Give the store under ``prefix`` a generation that began at ``started`` (epoch seconds).

    For tests only: a real store's generation begins when its data does, and claiming an earlier
    start would let items spent before it be spent again.
    """
    client.set(prefix + GENERATION_KEY, f"{secrets.token_hex(8)}:{int(started * 1000)}".encode())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
