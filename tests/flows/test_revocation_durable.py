"""Revocations are durable and monotonic (issue 9): they live in the IAM database, not in Redis.

Live gateways over TCP, signed requests from boto3: two replicas on one PostgreSQL (notified) or
one SQLite file (polled); a restart; Redis keys deleted, and a Redis restarted empty, paused and
stopped; and a database that goes away (a proxy the test cuts) making signed requests 503 until
it comes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway import keys
from gateway.credentials import IssuedCredentials
from gateway.store.redis import key_pattern
from gateway.testing.redis import RedisServer
from gateway.testing.tcpproxy import CuttableProxy
from tests.conftest import BackgroundLoop, config_from, serve_app

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/app"
SECRET = "a shared key-ring secret of at least 32 bytes"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": "x"}, "Action": "sts:AssumeRoleWithWebIdentity"}
    ],
}


@dataclass
class Replica:
    """One running gateway."""

    url: str
    app: web.Application
    runner: web.AppRunner

    def issue(self) -> IssuedCredentials:
        return self.app[keys.CREDENTIALS].issue(role_arn=ROLE, session_name="s", duration_seconds=900)

    def caller(self, creds: IssuedCredentials) -> str:
        """The error code a signed GetCallerIdentity gets here ("" when it is answered)."""
        sts = boto3.client(
            "sts",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id=creds.access_key_id,
            aws_secret_access_key=creds.secret_access_key,
            aws_session_token=creds.session_token,
            config=Config(retries={"max_attempts": 1}),
        )
        try:
            sts.get_caller_identity()
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])
        return ""


@pytest.fixture()
def start(background_loop: BackgroundLoop) -> Iterator[Callable[..., Replica]]:
    """Start gateways with a shared key ring and the given database settings; all stopped after."""
    running: list[Replica] = []

    def make(database: dict[str, Any], **extra: Any) -> Replica:
        raw = {
            "account_id": ACCOUNT,
            "audit": {"sink": "none"},
            "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": SECRET}}]},
            "database": database,
            "roles": [{"name": "app", "trust_policy": TRUST}],
            **extra,
        }
        runner, port, app = background_loop.run(serve_app(config_from(raw)))
        replica = Replica(f"http://127.0.0.1:{port}", app, runner)
        running.append(replica)
        return replica

    yield make
    for replica in running:
        stop(background_loop, replica)


def stop(loop: BackgroundLoop, replica: Replica) -> None:
    loop.run(replica.runner.cleanup())


def revoke(loop: BackgroundLoop, replica: Replica) -> None:
    time.sleep(0.01)  # the cutoff ("now") falls after every session issued so far
    loop.run(replica.app[keys.CREDENTIALS].revoke_role_sessions(ROLE, before=time.time()))


def until(outcome: Callable[[], bool], what: str, within: float = 30.0) -> None:
    """Poll for an outcome (a generous deadline against hanging, not a measurement)."""
    deadline = time.monotonic() + within
    while not outcome():
        assert time.monotonic() < deadline, f"still not: {what}"
        time.sleep(0.02)


def test_a_revocation_on_one_replica_is_enforced_by_the_other_through_notifications(
    start: Callable[..., Replica], background_loop: BackgroundLoop, postgres_url: str
) -> None:
    # Polling every 60 s: within this test only a notification can tell replica B.
    a = start({"url": postgres_url, "poll_interval_seconds": 60, "max_staleness_seconds": 600})
    b = start({"url": postgres_url, "poll_interval_seconds": 60, "max_staleness_seconds": 600})
    until(lambda: b.app[keys.DATABASE].watcher.listening, "replica B listens")
    creds = a.issue()
    assert a.caller(creds) == b.caller(creds) == ""
    revoke(background_loop, a)
    assert a.caller(creds) == "InvalidClientTokenId"  # at once where it was revoked
    until(lambda: b.caller(creds) == "InvalidClientTokenId", "replica B refuses the revoked session")
    assert b.caller(b.issue()) == ""  # sessions issued after the cutoff still work


def test_replicas_on_one_sqlite_file_learn_by_polling_and_a_restart_keeps_it(
    start: Callable[..., Replica], background_loop: BackgroundLoop, tmp_path: Path
) -> None:
    database = {"url": f"sqlite:///{tmp_path / 'iam.db'}", "poll_interval_seconds": 0.1}
    a, b = start(database), start(database)
    creds = a.issue()
    assert b.caller(creds) == ""
    revoke(background_loop, a)
    until(lambda: b.caller(creds) == "InvalidClientTokenId", "replica B refuses after a poll")
    stop(background_loop, a)
    stop(background_loop, b)
    restarted = start(database)
    assert restarted.caller(creds) == "InvalidClientTokenId"  # durable: read back at start-up


def test_redis_losing_everything_changes_no_revocation(
    start: Callable[..., Replica],
    background_loop: BackgroundLoop,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    private_redis: RedisServer,
) -> None:
    database = {"url": f"sqlite:///{tmp_path / 'iam.db'}"}
    shared = start(database, store={"backend": "redis", "url": redis_url, "prefix": redis_prefix})
    creds = shared.issue()
    revoke(background_loop, shared)
    with redis.Redis.from_url(redis_url) as client:  # wipe this gateway's keys: nothing to wipe
        stale = list(client.scan_iter(match=key_pattern(redis_prefix)))
        if stale:
            client.delete(*stale)
    assert shared.caller(creds) == "InvalidClientTokenId"

    # Two replicas on a Redis of this test's own: restarted empty, paused (SIGSTOP), resumed,
    # stopped, started. Both refuse the revoked session throughout.
    store = {"backend": "redis", "url": private_redis.url, "prefix": "fedgate:"}
    replicas = [start(database, store=store), start(database, store=store)]

    def refused_everywhere() -> None:
        assert [r.caller(creds) for r in replicas] == ["InvalidClientTokenId"] * 2

    refused_everywhere()
    private_redis.restart()
    refused_everywhere()
    private_redis.pause()
    try:
        refused_everywhere()
        assert [r.caller(r.issue()) for r in replicas] == ["", ""]  # a signed call needs no store
    finally:
        private_redis.resume()
    refused_everywhere()
    private_redis.stop()
    try:
        refused_everywhere()
    finally:
        private_redis.start()
    refused_everywhere()


def test_a_database_gone_longer_than_the_bound_makes_signed_requests_503_until_it_returns(
    start: Callable[..., Replica], background_loop: BackgroundLoop, postgres_url: str
) -> None:
    proxy = CuttableProxy.for_url(postgres_url)
    background_loop.run(proxy.start())
    try:
        gateway = start(
            {
                "url": proxy.url_through(postgres_url),
                "poll_interval_seconds": 0.1,
                "max_staleness_seconds": 1,
                "connect_timeout_seconds": 1,
                "statement_timeout_seconds": 1,
            }
        )
        creds = gateway.issue()
        assert gateway.caller(creds) == ""
        background_loop.run(proxy.cut())
        until(lambda: gateway.caller(creds) == "ServiceUnavailable", "signed requests are refused (503)")
        assert _ready(gateway) == (503, "stale")
        background_loop.run(proxy.restore())
        until(lambda: gateway.caller(creds) == "", "signed requests are accepted again")
        assert _ready(gateway) == (200, "ok")
    finally:
        background_loop.run(proxy.close())


def _ready(replica: Replica) -> tuple[int, str]:
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(replica.url + "/readyz", timeout=10) as response:
            return response.status, json.loads(response.read())["checks"]["database"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["checks"]["database"]
