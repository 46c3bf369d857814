"""Fixtures shared by the whole suite: a real Redis, a real PostgreSQL, both store backends, a
background loop, and an observer checking every audit event against the schema in docs/audit.md.

Nothing here is mocked.

The Redis server is the one at ``$REDIS_URL`` (default ``redis://127.0.0.1:6379/0``). An unreachable
server fails the Redis tests with a message saying how to start one; it is never a skip. Each run
writes under a random key prefix and deletes everything under it at the end.

PostgreSQL is the server ``$DATABASE_URL`` names (default
``postgresql://postgres@127.0.0.1:5432/postgres``), used as an administrator's connection: tests
create databases with unique random names there (:func:`fresh_postgres_database`) and drop them
after. An unreachable server fails the tests that need it, saying how to start one.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import inspect
import json
import os
import re
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import jsonschema
import pytest
import redis
from aiohttp import web

from gateway.app import create_app
from gateway.audit import Auditor
from gateway.config import GatewayConfig, parse_config
from gateway.plugin_host import PluginHost
from gateway.store import MemoryStore, RedisStore, Store
from gateway.store.redis import key_pattern
from gateway.testing.redis import (
    RedisClusterSet,
    RedisSentinelSet,
    RedisServer,
    RedisServerError,
    backdate_generation,
)
from gateway.web.server import GatewayRunner

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
#: The deadline of the shared-Redis stores of store_factory. The suites race a hundred operations at
#: once on a machine shared with other runs, which can stall this process for longer than the
#: production default (0.25 s) allows; the fault tests (tests/store/test_store_faults.py) set short
#: deadlines of their own.
SHARED_REDIS_TIMEOUT = 5.0
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
T = TypeVar("T")


def _configured_url() -> str:
    return os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL


def redacted(url: str) -> str:
    """``url`` with any password replaced, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The URL of a reachable Redis server; fails the test (never skips) when there is none."""
    url = _configured_url()
    problem = None
    try:
        with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            client.ping()
    except (redis.RedisError, OSError, ValueError) as exc:
        problem = type(exc).__name__
    if problem is not None:  # failed outside the except block, so the report is just the message
        pytest.fail(
            f"No Redis server reachable at {redacted(url)} ({problem}). These tests need a real one: "
            "start it (`redis-server --port 6379`; .ci/run starts one for CI) or point $REDIS_URL at one.",
            pytrace=False,
        )
    return url


@pytest.fixture(scope="session")
def redis_run_prefix() -> Iterator[str]:
    """A key prefix unique to this test run; everything under it is deleted at the end."""
    prefix = f"fedgate-test:{secrets.token_hex(6)}:"
    yield prefix
    try:
        with redis.Redis.from_url(_configured_url(), socket_connect_timeout=3, socket_timeout=3) as client:
            keys = list(client.scan_iter(match=key_pattern(prefix), count=500))
            if keys:
                client.delete(*keys)
    except (redis.RedisError, OSError, ValueError):
        pass  # no server: the redis_url fixture has already failed every test that needed one


@pytest.fixture()
def redis_prefix(redis_url: str, redis_run_prefix: str) -> str:
    """A key prefix private to one test (under the run's prefix, so it is cleaned up with it)."""
    return f"{redis_run_prefix}{secrets.token_hex(4)}:"


@pytest.fixture(scope="module")
def private_redis() -> Iterator[RedisServer]:
    """A ``redis-server`` of this module's own (free port, temporary directory, no persistence, a
    password), for tests that stop, restart, pause or resume it: never the shared one. Fails (never
    skips) when ``redis-server`` is missing. Tests that pause or stop it resume or start it again."""
    problem = None
    server = None
    try:
        server = RedisServer(password=secrets.token_hex(12))
        server.start()
    except RedisServerError as exc:
        problem = str(exc)
        if server is not None:
            server.close()
    if problem is not None or server is None:
        pytest.fail(problem or "redis-server did not start", pytrace=False)
    yield server
    server.close()


def _started(topology: T) -> T:
    """Start ``topology`` (anything with start() and close()), failing the test when it cannot."""
    try:
        topology.start()  # type: ignore[attr-defined]
    except RedisServerError as exc:
        topology.close()  # type: ignore[attr-defined]
        pytest.fail(str(exc), pytrace=False)
    return topology


@pytest.fixture(scope="session")
def redis_sentinel() -> Iterator[RedisSentinelSet]:
    """A private primary, replica and sentinel (with a password), for the conformance suite. Tests
    that fail the primary over start a set of their own."""
    topology = _started(RedisSentinelSet(password=secrets.token_hex(12)))
    yield topology
    topology.close()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisClusterSet]:
    """A private Redis Cluster of three primaries (with a password), for the conformance suite."""
    topology = _started(RedisClusterSet(password=secrets.token_hex(12)))
    yield topology
    topology.close()


def _run_alone(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion on a loop in a thread of its own, so that sync and async fixtures
    alike can call it and the test's event loop is left untouched."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def pytest_configure(config: pytest.Config) -> None:
    """No SDK or CLI any test runs may fall back to the EC2 metadata address (a link-local
    address, outside loopback) when it finds no credentials: set for the whole run, each xdist
    worker and every subprocess a test starts (tests that build their own environment set it too)."""
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """A URL to a reachable PostgreSQL where tests may create databases; fails (never skips) when
    there is none."""
    url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
    problem = None
    try:
        _run_alone(_admin(url, "SELECT 1"))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError, ValueError) as exc:
        problem = type(exc).__name__
    if problem is not None:
        pytest.fail(
            f"No PostgreSQL reachable at {redacted(url)} ({problem}). These tests need a real one: start "
            "it (`pg_ctlcluster --skip-systemctl-redirect 15 main start`; .ci/run installs and starts "
            "one) or point $DATABASE_URL at a server where the tests may create databases.",
            pytrace=False,
        )
    return url


@contextlib.contextmanager
def fresh_postgres_database(admin_url: str, options: str = "") -> Iterator[str]:
    """Create a database with a unique random name (and ``CREATE DATABASE`` ``options``, such as
    a collation); yield its URL; drop it (connections and all)."""
    name = f"fedgate_test_{secrets.token_hex(6)}"
    _run_alone(_admin(admin_url, f'CREATE DATABASE "{name}" {options}'))
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        _run_alone(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture()
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """The URL of a new PostgreSQL database for one test, dropped after it."""
    with fresh_postgres_database(postgres_admin_url) as url:
        yield url


async def eventually(
    check: Callable[[], bool | Awaitable[bool]], *, within: float = 20.0, what: str = ""
) -> None:
    """Wait until ``check()`` (plain or awaitable) holds, polling every 10 ms; fail after ``within`` s.

    For outcomes that arrive asynchronously (another replica learning of a change): the deadline is
    a generous bound against hanging, not a measurement.
    """
    deadline = asyncio.get_running_loop().time() + within
    while True:
        outcome = check()
        if await outcome if inspect.isawaitable(outcome) else outcome:
            return
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"still not true after {within:.0f} s: {what or check}")
        await asyncio.sleep(0.01)


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new, empty database for one test, on each backend: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/iam.db"
    else:
        yield request.getfixturevalue("postgres_url")


StoreFactory = Callable[[], Awaitable[Store]]


@pytest.fixture(params=["memory", "redis", "sentinel", "cluster"])
async def store_factory(request: pytest.FixtureRequest, redis_run_prefix: str) -> AsyncIterator[StoreFactory]:
    """Make stores that share state, as replicas do: one in-process store, or Redis clients.

    For ``memory`` every call returns the same store (one process has one); for the others every
    call opens a new client on the same Redis and prefix, i.e. another replica: the shared server
    (``redis``), a primary found through a sentinel (``sentinel``), a three-primary cluster
    (``cluster``). Each has been running for an hour (its generation began then), like a
    deployment's store.
    """
    opened: list[Store] = []
    if request.param == "memory":
        shared = running_memory_store()
        opened.append(shared)

        async def make() -> Store:
            return shared

    elif request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = f"{redis_run_prefix}{secrets.token_hex(4)}:"
        with redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3) as client:
            backdate_generation(client, prefix, time.time() - 3600)

        async def make() -> Store:
            store = RedisStore.from_url(url, prefix=prefix, timeout=SHARED_REDIS_TIMEOUT)
            opened.append(store)
            return store

    elif request.param == "sentinel":
        sentinel: RedisSentinelSet = request.getfixturevalue("redis_sentinel")
        prefix = f"t:{secrets.token_hex(4)}:"
        with sentinel.primary.client() as client:
            backdate_generation(client, prefix, time.time() - 3600)

        async def make() -> Store:
            store = RedisStore.from_sentinel(
                sentinel.sentinels,
                sentinel.service,
                prefix=prefix,
                password=sentinel.password,
                timeout=SHARED_REDIS_TIMEOUT,
            )
            opened.append(store)
            return store

    else:
        cluster: RedisClusterSet = request.getfixturevalue("redis_cluster")
        prefix = f"t:{secrets.token_hex(4)}:"
        with cluster.client() as client:
            backdate_generation(client, prefix, time.time() - 3600)

        async def make() -> Store:
            store = RedisStore.from_cluster(
                cluster.startup_nodes, prefix=prefix, password=cluster.password, timeout=SHARED_REDIS_TIMEOUT
            )
            opened.append(store)
            return store

    yield make
    for store in opened:
        await store.close()


@pytest.fixture
async def store(store_factory: StoreFactory) -> Store:
    """A store of each backend, isolated from other tests."""
    return await store_factory()


class BackgroundLoop:
    """An event loop in a thread, so synchronous clients (boto3, the aws CLI) can call servers
    running in it without blocking them."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fedgate-test-loop", daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run ``coro`` on the loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and join its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


@pytest.fixture(scope="session")
def background_loop() -> Iterator[BackgroundLoop]:
    """One background event loop for the servers of synchronous end-to-end tests."""
    loop = BackgroundLoop()
    yield loop
    loop.close()


def config_from(raw: Mapping[str, Any]) -> GatewayConfig:
    """Validate ``raw`` with the installed plugins, as ``fedgate serve`` would."""
    host = PluginHost()
    return parse_config(raw, provider_types=host.provider_types(), sections=host.config_sections())


def running_memory_store() -> MemoryStore:
    """A memory store whose generation began an hour ago: a gateway that has been up for a while.

    A fresh store refuses SAML assertions issued before it began plus the clock-skew leeway (they
    may have been spent before it); tests that mint an assertion and present it at once use this
    one, and the replay tests use fresh stores on purpose.
    """
    return MemoryStore(started=time.time() - 3600)


async def serve_app(
    config: GatewayConfig, *, store: Store | None = None
) -> tuple[web.AppRunner, int, web.Application]:
    """Serve a gateway for ``config`` on 127.0.0.1 and a free port, as ``fedgate serve`` does
    (:class:`GatewayRunner`: its limits, timeouts and error answers); clean up with
    ``runner.cleanup()``. ``store`` replaces the one ``config.store`` describes (see
    :func:`gateway.app.create_app`)."""
    app = create_app(config, store=store)
    runner = GatewayRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, runner.addresses[0][1], app


async def serve_handler(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]], *, client_max_size: int = 1024**2
) -> tuple[web.AppRunner, int]:
    """A stand-in upstream: ``handler`` answering every method and path on 127.0.0.1 and a free
    port; clean up with ``runner.cleanup()``."""
    app = web.Application(client_max_size=client_max_size)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, runner.addresses[0][1]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_until_listening(proc: subprocess.Popen[bytes], port: int, log: Path, within: float = 20) -> None:
    """Wait for ``proc`` (a ``fedgate serve``) to accept on ``port``; fail with its log if it exits."""
    deadline = time.monotonic() + within
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "fedgate did not start listening"
            time.sleep(0.1)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the peer sends on ``sock`` until it closes the connection."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


@functools.cache
def audit_validator() -> jsonschema.protocols.Validator:
    """A validator for the audit event schema written down in docs/audit.md (its one JSON block)."""
    text = (Path(__file__).parent.parent / "docs" / "audit.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```json\n(.*?)^```$", text, flags=re.S | re.M)
    assert len(blocks) == 1, "docs/audit.md must hold exactly one JSON block: the event schema"
    schema = json.loads(blocks[0])
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture(autouse=True)
def audit_events_match_the_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every audit event any test causes must match docs/audit.md; a mismatch fails that test.

    An observer, not a stand-in: it wraps :meth:`gateway.audit.Auditor.build` and returns what the
    real method built, so each event is checked exactly as the sinks receive it.
    """
    problems: list[str] = []
    real = Auditor.build

    def checked(self: Auditor, *args: Any, **kwargs: Any) -> dict[str, Any]:
        event = real(self, *args, **kwargs)
        for error in audit_validator().iter_errors(event):
            path = "/".join(str(p) for p in error.absolute_path)
            problems.append(f"{event.get('eventName')}: {path or '(event)'}: {error.message}")
        return event

    monkeypatch.setattr(Auditor, "build", checked)
    yield
    assert not problems, "audit events do not match docs/audit.md:\n" + "\n".join(problems)


@pytest.fixture()
def clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """An environment with no AWS configuration leaking in from the machine."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    env = {
        "AWS_CONFIG_FILE": str(tmp_path / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "HOME": str(tmp_path),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env
