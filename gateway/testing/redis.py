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
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Self, final

import redis

from gateway.store.base import GENERATION_KEY
from gateway.store.redis import redis_key

__all__ = ["RedisClusterSet", "RedisSentinelSet", "RedisServer", "RedisServerError", "backdate_generation"]

_START_TIMEOUT = 10.0


class RedisServerError(RuntimeError):
    """``redis-server`` is missing or would not start; the message says how to fix it."""


class _Started:
    """A context manager that starts its servers on entry and closes them on exit, or at once
    when starting failed half-way (nothing left running, no directory left behind)."""

    def start(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


@final
class RedisServer(_Started):
    """One ``redis-server`` process owned by the caller (see the module docstring)."""

    def __init__(
        self,
        *,
        password: str | None = None,
        executable: str | None = None,
        args: Sequence[str] = (),
        config: str | None = None,
        port: int | None = None,
    ) -> None:
        found = executable or shutil.which("redis-server")
        if found is None:
            raise RedisServerError(
                "redis-server is not installed (fault tests start their own): "
                "apt-get install redis-server, or put it on PATH"
            )
        self._executable = found
        self.password = password
        self._args = list(args)
        self._config = config
        self._dir = Path(tempfile.mkdtemp(prefix="fedgate-redis-"))
        self.port = port or _free_port()
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
        # A configuration file comes first (sentinels need one they may rewrite); options follow.
        config = []
        if self._config is not None:
            path = self._dir / "redis.conf"
            if not path.exists():
                path.write_text(self._config)
            config.append(str(path))
        args = [
            self._executable,
            *config,
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
        args += self._args
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

    def _answers(self) -> bool:
        try:
            with self.client() as client:
                return bool(client.ping())
        except (redis.RedisError, OSError):
            return False


@final
class RedisSentinelSet(_Started):
    """A primary, its replica and a sentinel monitoring them as :attr:`service`, all private.

    The sentinel declares the primary down after ``down_after`` seconds without an answer and then
    promotes the replica: :meth:`kill_primary` and :meth:`wait_for_failover` are a failover.
    """

    service = "fedgate"

    def __init__(self, *, password: str | None = None, down_after: float = 0.5) -> None:
        # No 5 s wait before a full sync (the default delay, for replicas starting together).
        auth = ["--repl-diskless-sync-delay", "0"] + (["--masterauth", password] if password else [])
        self.password = password
        self.primary = RedisServer(password=password, args=auth)
        self.replica = RedisServer(password=password, args=auth)
        monitor = [
            f"sentinel monitor {self.service} 127.0.0.1 {self.primary.port} 1",
            f"sentinel down-after-milliseconds {self.service} {int(down_after * 1000)}",
            f"sentinel failover-timeout {self.service} 10000",
        ]
        if password:
            monitor.append(f"sentinel auth-pass {self.service} {password}")
        self.sentinel = RedisServer(args=["--sentinel"], config="\n".join(monitor) + "\n")

    @property
    def sentinels(self) -> list[tuple[str, int]]:
        """The sentinels' addresses, as :meth:`gateway.store.RedisStore.from_sentinel` takes them."""
        return [("127.0.0.1", self.sentinel.port)]

    def start(self) -> None:
        """Start the primary, the replica (synchronised) and the sentinel (knowing the replica)."""
        self.primary.start()
        self.replica.start()
        with self.replica.client() as replica:
            replica.replicaof("127.0.0.1", self.primary.port)
            _wait(lambda: replica.info("replication").get("master_link_status") == "up", "replica in sync")
        self.sentinel.start()
        with self.sentinel.client() as sentinel:
            _wait(lambda: bool(sentinel.sentinel_slaves(self.service)), "sentinel sees the replica")

    def primary_port(self) -> int:
        """The port of the server the sentinel names as primary now."""
        with self.sentinel.client() as sentinel:
            address = sentinel.sentinel_get_master_addr_by_name(self.service)
        return int(address[1])

    def kill_primary(self) -> RedisServer:
        """Stop whichever server is primary now (``SIGTERM``, no persistence); return it."""
        current = self.primary if self.primary_port() == self.primary.port else self.replica
        current.stop()
        return current

    def wait_for_failover(self, old: RedisServer, within: float = 30.0) -> RedisServer:
        """Wait until the sentinel names another primary than ``old`` and it accepts writes."""
        new = self.replica if old is self.primary else self.primary
        _wait(lambda: self.primary_port() == new.port, "the sentinel promotes the replica", within)
        with new.client() as client:
            _wait(
                lambda: client.info("replication").get("role") == "master", "the replica is primary", within
            )
        return new

    def close(self) -> None:
        """Stop every server and delete their directories."""
        for server in (self.sentinel, self.replica, self.primary):
            server.close()


@final
class RedisClusterSet(_Started):
    """A Redis Cluster of ``masters`` private primaries (no replicas) sharing the 16384 slots."""

    def __init__(self, *, masters: int = 3, password: str | None = None) -> None:
        args = [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
        ]
        self.password = password
        # A node's cluster bus listens 10000 above its port, which must therefore be free too.
        self.nodes = [
            RedisServer(password=password, args=args, port=_free_bus_port()) for _ in range(masters)
        ]

    @property
    def startup_nodes(self) -> list[tuple[str, int]]:
        """The nodes' addresses, as :meth:`gateway.store.RedisStore.from_cluster` takes them."""
        return [("127.0.0.1", node.port) for node in self.nodes]

    def start(self) -> None:
        """Start the nodes, give each an equal range of slots, introduce them, wait for ``ok``."""
        for node in self.nodes:
            node.start()
        step = -(-16384 // len(self.nodes))
        for i, node in enumerate(self.nodes):
            with node.client() as client:
                # Distinct epochs up front: otherwise the nodes spend many seconds resolving the
                # collision of their equal ones before the cluster is ok.
                client.execute_command("CLUSTER", "SET-CONFIG-EPOCH", i + 1)
                client.execute_command("CLUSTER", "ADDSLOTSRANGE", i * step, min(16383, (i + 1) * step - 1))
                if i:
                    client.execute_command("CLUSTER", "MEET", "127.0.0.1", self.nodes[0].port)
        for node in self.nodes:
            with node.client() as client:
                _wait(lambda c=client: _cluster_ok(c, len(self.nodes)), "the cluster state is ok")  # type: ignore[misc]

    def client(self) -> redis.RedisCluster:
        """A synchronous cluster client (short timeouts)."""
        return redis.RedisCluster(
            host="127.0.0.1",
            port=self.nodes[0].port,
            password=self.password,
            socket_timeout=2,
            socket_connect_timeout=2,
        )

    def close(self) -> None:
        """Stop every node and delete their directories."""
        for node in self.nodes:
            node.close()


def _cluster_ok(client: redis.Redis, masters: int) -> bool:
    info = client.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]  # untyped in redis-py
    text = info.decode() if isinstance(info, bytes) else str(info)
    return "cluster_state:ok" in text and f"cluster_known_nodes:{masters}" in text


def _wait(check: Callable[[], bool], what: str, within: float = _START_TIMEOUT * 3) -> None:
    deadline = time.monotonic() + within
    while True:
        try:
            if check():
                return
        except (redis.RedisError, OSError):
            pass  # not yet: a server still starting, a failover under way
        if time.monotonic() > deadline:
            raise RedisServerError(f"gave up waiting: {what}")
        time.sleep(0.05)


def backdate_generation(client: redis.Redis | redis.RedisCluster, prefix: str, started: float) -> None:
    """Give the store under ``prefix`` a generation that began at ``started`` (epoch seconds).

    For tests only: a real store's generation begins when its data does, and claiming an earlier
    start would let items spent before it be spent again.
    """
    value = f"{secrets.token_hex(8)}:{int(started * 1000)}".encode()
    client.set(redis_key(prefix, GENERATION_KEY), value)


def _free_bus_port() -> int:
    """A free port P at most 55535 with P + 10000 free too."""
    for _ in range(200):
        port = 20000 + secrets.randbelow(35000)
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        return port
    raise RedisServerError("no free pair of ports for a cluster node")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
