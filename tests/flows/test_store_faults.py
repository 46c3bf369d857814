"""Two replicas sharing a Redis that the tests restart empty, pause (SIGSTOP) and resume (SIGCONT).

The replicas are real gateways on real TCP ports; boto3 is the client. What must hold through all of
it: a SAML response spent once is never accepted again, a hung store answers 503 at once (and
leaves one log line per replica, no traceback, no secret), ``/readyz`` says not ready while the
store is unreachable, and everything works again when Redis is back, without restarting fedgate.

The replicas allow no clock skew (``clock_skew_seconds: 0``), so a response minted after the store's
new generation began is accepted at once; with the default 60 s, responses issued in the first
minute after a reset are refused too (the IdP's clock may run that far ahead).
"""

from __future__ import annotations

import json
import logging
import math
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError

from gateway.store.base import GENERATION_KEY
from gateway.store.redis import redis_key
from gateway.testing.redis import RedisServer, backdate_generation
from gateway.testing.saml import SAMLTestIdP
from tests.conftest import BackgroundLoop, config_from, serve_app
from tests.flows.conftest import ACCOUNT

PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
ENGINEERS = f"arn:aws:iam::{ACCOUNT}:role/Engineers"
PREFIX = "fedgate-faults:"
# An upper bound on how long a replica may take to answer, well above the store's 0.2 s deadline
# and below the 5 s socket timeout a hung Redis used to cost. It is asserted (as the client's read
# timeout) only because nothing else, from outside the process, tells a request cut by the deadline
# from one cut by the socket timeout; the store tests check the cause itself.
ANSWER_BOUND = 3.0


@dataclass
class Replicas:
    urls: list[str]
    server: RedisServer
    idp: SAMLTestIdP

    def fresh_assertion(self) -> str:
        """A response the store's current generation cannot have seen spent before it began.

        IssueInstant has whole seconds; one minted in the very second the generation began reads
        as issued before it (and is refused, rightly), so wait for the next second.
        """
        with self.server.client() as client:
            raw = client.get(redis_key(PREFIX, GENERATION_KEY))
        assert raw is not None, "the replicas start a generation as soon as they reach the store"
        started = int(raw.decode().rsplit(":", 1)[1]) / 1000
        while time.time() < math.floor(started) + 1:
            time.sleep(0.05)
        return SAMLTestIdP.b64(self.idp.response(roles=[(ENGINEERS, PROVIDER)]))


def _trust() -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithSAML",
                "Condition": {"StringEquals": {"SAML:aud": "https://signin.aws.amazon.com/saml"}},
            }
        ],
    }


@pytest.fixture(scope="module")
def replicas(background_loop: BackgroundLoop, private_redis: RedisServer) -> Iterator[Replicas]:
    """Two gateways sharing ``private_redis``, whose store has been up for an hour."""
    with private_redis.client() as client:
        backdate_generation(client, PREFIX, time.time() - 3600)
    with SAMLTestIdP() as idp:
        raw = {
            "account_id": ACCOUNT,
            "audit": {"sink": "none"},
            "clock_skew_seconds": 0,
            "store": {
                "backend": "redis",
                "url": private_redis.url,
                "prefix": PREFIX,
                "operation_timeout": 0.2,
                "breaker_failures": 2,
                "breaker_cooldown": 0.2,
            },
            "providers": [idp.provider_config(name="corp")],
            "roles": [{"name": "Engineers", "trust_policy": _trust()}],
        }
        runners: list[web.AppRunner] = []
        urls = []
        for _ in range(2):
            runner, port, _ = background_loop.run(serve_app(config_from(raw)))
            runners.append(runner)
            urls.append(f"http://127.0.0.1:{port}")
        try:
            yield Replicas(urls, private_redis, idp)
        finally:
            private_redis.resume()
            if private_redis.pid is None:
                private_redis.start()
            for runner in runners:
                background_loop.run(runner.cleanup())


def assume(url: str, assertion: str) -> str:
    """``AssumeRoleWithSAML`` on one replica: ``"ok"`` or the error code."""
    sts = boto3.client(
        "sts",
        endpoint_url=url,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}, read_timeout=ANSWER_BOUND, connect_timeout=ANSWER_BOUND),
    )
    try:
        sts.assume_role_with_saml(RoleArn=ENGINEERS, PrincipalArn=PROVIDER, SAMLAssertion=assertion)
    except ClientError as exc:
        return str(exc.response["Error"]["Code"])
    return "ok"


def readyz(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=ANSWER_BOUND) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def settled(url: str, assertion: str) -> str:
    """The answer once the store is reachable again: ServiceUnavailable while it is not (the
    breaker's cool-down, reconnecting), then the real decision. Never "ok" for a spent response."""
    deadline = time.monotonic() + 15
    while (answer := assume(url, assertion)) == "ServiceUnavailable" and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


def accepted_once(replicas: Replicas, url: str, other: str) -> str:
    """A new response is accepted on ``url``, and then refused on ``other``; returns it.

    Each try uses a new response: a 503 can come from a spend the deadline cut after Redis had
    made the mark (fail closed), and retrying that response would rightly be refused as a replay.
    """
    deadline = time.monotonic() + 15
    while (answer := assume(url, fresh := replicas.fresh_assertion())) == "ServiceUnavailable":
        assert time.monotonic() < deadline, "the store never answered again"
        time.sleep(0.1)
    assert answer == "ok"
    assert settled(other, fresh) == "InvalidIdentityToken"
    return fresh


def wait_ready(url: str) -> None:
    deadline = time.monotonic() + 15
    while readyz(url)[0] != 200:
        assert time.monotonic() < deadline, f"{url} never became ready again"
        time.sleep(0.1)


def test_spent_response_stays_refused_across_restart_pause_and_resume(replicas: Replicas) -> None:
    first, second = replicas.urls
    spent = accepted_once(replicas, first, second)

    replicas.server.restart()  # every replay mark gone
    for url in (first, second):
        assert settled(url, spent) == "InvalidIdentityToken"

    unspent = replicas.fresh_assertion()
    replicas.server.pause()
    try:
        for url in (first, second):
            # Each replica learnt the new generation above, so it refuses the old response without
            # asking the hung store; a new one needs the store, and gets 503.
            assert assume(url, spent) == "InvalidIdentityToken"
            assert assume(url, unspent) == "ServiceUnavailable"
    finally:
        replicas.server.resume()
    for url in (first, second):
        assert settled(url, spent) == "InvalidIdentityToken"


def test_hung_store_fast_503s_one_log_line_each_and_not_ready(
    replicas: Replicas, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = replicas.urls
    for url in (first, second):
        wait_ready(url)
    unspent = replicas.fresh_assertion()  # only the store can decide on it
    caplog.set_level(logging.INFO)
    caplog.clear()
    replicas.server.pause()
    try:
        for n, url in enumerate((first, second), start=1):
            for _ in range(5):
                assert assume(url, unspent) == "ServiceUnavailable"
            status, body = readyz(url)
            assert status == 503 and body == {
                "status": "not ready",
                "checks": {"store": "unavailable", "database": "ok", "sts": "ok"},
            }
            outage = [r for r in caplog.records if r.name == "gateway.store.breaker"]
            assert len(outage) == n, [r.getMessage() for r in outage]  # one line per replica
    finally:
        replicas.server.resume()
    assert all(r.levelno == logging.WARNING for r in outage)
    for record in caplog.records:
        assert record.exc_info is None, record.getMessage()  # no traceback per request
        assert replicas.server.password not in json.dumps(vars(record), default=str)
    # Back without restarting fedgate: ready, and a new response is accepted exactly once.
    for url in (first, second):
        wait_ready(url)
    accepted_once(replicas, second, first)


def test_recovery_after_restart_without_restarting_fedgate(replicas: Replicas) -> None:
    first, second = replicas.urls
    replicas.server.restart()
    for url in (first, second):
        wait_ready(url)  # 200: the store answers and has a generation again
    accepted_once(replicas, first, second)
