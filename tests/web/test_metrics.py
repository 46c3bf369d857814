"""``GET /metrics``: scraped from a real ``fedgate serve --workers 2``, and who may read it."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from gateway.credentials import CredentialService, KeyRing, Revocations
from gateway.testing.oidc import OIDCTestIssuer
from tests.conftest import BackgroundLoop, config_from, free_port, serve_app, wait_until_listening
from tests.proxy.helpers import send, signed

ACCOUNT = "123456789012"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Federated": "x"}, "Action": "sts:AssumeRoleWithWebIdentity"}
    ],
}
PUT_ALLOWED = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::bkt/ok/*"}],
}


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture()
def upstream(background_loop: BackgroundLoop) -> Iterator[str]:
    """An upstream that answers 200 to anything."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

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


def _config(tmp_path: Path, secret: str, target: str) -> dict[str, Any]:
    return {
        "account_id": ACCOUNT,
        "log_level": "WARNING",
        "audit": {"sink": "none"},
        "keyring": {"active": "k", "keys": [{"id": "k", "secret": {"value": secret}}]},
        "database": {"url": f"sqlite:///{tmp_path / 'iam.db'}"},
        "roles": [
            {"name": "app", "trust_policy": TRUST, "policies": [{"name": "p", "document": PUT_ALLOWED}]}
        ],
        "upstreams": [
            {
                "name": "objects",
                "match": {"hosts": ["localhost"]},
                "target": target,
                "service": "s3",
                "mapping": "s3",
                "auth": "resign",
                "credentials": {"access_key_id": {"value": "AK"}, "secret_access_key": {"value": "SK"}},
            }
        ],
    }


def _credentials(secret: str) -> dict[str, str]:
    issued = CredentialService(KeyRing({"k": secret.encode()}, "k"), Revocations.local()).issue(
        role_arn=f"arn:aws:iam::{ACCOUNT}:role/app", session_name="app", duration_seconds=3600
    )
    return {
        "aws_access_key_id": issued.access_key_id,
        "aws_secret_access_key": issued.secret_access_key,
        "aws_session_token": issued.session_token,
    }


def _put(port: int, creds: dict[str, str], key: str) -> int:
    target, headers = signed(
        creds, "PUT", f"/bkt/{key}", host=f"localhost:{port}", headers=[("Content-Length", "1")], body=b"x"
    )
    return send(port, "PUT", target, headers, b"x").status


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    reply = send(port, "GET", "/metrics", [("Host", f"127.0.0.1:{port}")])
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("text/plain; version=0.0.4")
    return samples(reply.body.decode())


def test_metrics_of_both_workers_move_with_requests(upstream: str, tmp_path: Path) -> None:
    secret = secrets.token_urlsafe(48)
    config = tmp_path / "fedgate.yaml"
    config.write_text(yaml.safe_dump(_config(tmp_path, secret, upstream)))
    port = free_port()
    runs = tmp_path / "tmp"
    runs.mkdir()
    log = tmp_path / "fedgate.log"
    env = {**os.environ, "TMPDIR": str(runs)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    fedgate = str(Path(sys.executable).with_name("fedgate"))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [fedgate, "serve", "-c", str(config), "--port", str(port), "--workers", "2"],
            stdout=subprocess.DEVNULL,
            stderr=out,
            env=env,
        )
    try:
        wait_until_listening(proc, port, log)
        creds = _credentials(secret)
        before = _scrape(port)
        # New connections are spread over the workers: 24 of them reach both but for odds of 2 in 2**24.
        for i in range(16):
            assert _put(port, creds, f"ok/{i}") == 200
        for i in range(8):
            assert _put(port, creds, f"no/{i}") == 403
        (directory,) = runs.iterdir()  # the run's directory, made by the parent
        workers = {int(f.stem.rpartition("_")[2]) for f in directory.glob("counter_*.db")}
        assert len(workers) == 2 and proc.pid not in workers
        # Each worker adds its tallies to its mapped file once a second (gateway.metrics), so the
        # worker answering a scrape sees the other's requests within that.
        deadline = time.monotonic() + 10
        while True:
            after = _scrape(port)
            answered = sum(
                value(after, "fedgate_requests_total", api="s3", action="PutObject", code=code)
                - value(before, "fedgate_requests_total", api="s3", action="PutObject", code=code)
                for code in ("OK", "AccessDenied")
            )
            if answered >= 24 or time.monotonic() > deadline:
                break
            time.sleep(0.2)

        def moved(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert moved("fedgate_requests_total", api="s3", action="PutObject", code="OK") == 16
        assert moved("fedgate_requests_total", api="s3", action="PutObject", code="AccessDenied") == 8
        assert moved("fedgate_decisions_total", api="s3", effect="Allow") == 16
        assert moved("fedgate_decisions_total", api="s3", effect="Deny") == 8
        assert (
            moved("fedgate_request_duration_seconds_count", api="s3", action="PutObject", outcome="ok") == 16
        )
        assert moved("fedgate_upstream_responses_total", upstream="objects", status="200") == 16
        assert moved("fedgate_upstream_request_duration_seconds_count", upstream="objects") == 16
        # The first scrape was counted too, by whichever worker answered it.
        assert moved("fedgate_requests_total", api="http", action="none", code="OK") >= 1
        assert value(after, "fedgate_database_statement_duration_seconds_count", backend="sqlite") > 0
        assert value(after, "fedgate_open_connections") >= 1  # this scrape's own
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(20)
    assert code == 0
    assert list(runs.iterdir()) == []  # the parent removed the run's directory


async def test_metrics_are_for_loopback_or_the_token(tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    config = config_from(
        {"account_id": ACCOUNT, "audit": {"sink": "none"}, "metrics": {"token": {"value": token}}}
    )
    runner, port, _ = await serve_app(config)
    try:
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/metrics"
            async with http.get(url) as r:
                assert r.status == 200
                assert "fedgate_requests_total" in await r.text()
            # A proxy on the same host relays others: loopback no longer vouches for the client.
            async with http.get(url, headers={"X-Forwarded-For": "203.0.113.9"}) as r:
                assert r.status == 403
                assert "<Code>AccessDenied</Code>" in await r.text()
            relayed = {"X-Forwarded-For": "203.0.113.9"}
            async with http.get(url, headers={**relayed, "Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
            async with http.get(url, headers={**relayed, "Authorization": "Bearer " + "x" * 32}) as r:
                assert r.status == 403
    finally:
        await runner.cleanup()


async def test_outside_the_allowed_networks_only_the_token_admits(tmp_path: Path) -> None:
    config = config_from({"account_id": ACCOUNT, "metrics": {"allow_from": ["192.0.2.0/24"]}})
    runner, port, _ = await serve_app(config)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert r.status == 403
    finally:
        await runner.cleanup()


async def test_metrics_can_be_turned_off() -> None:
    config = config_from({"account_id": ACCOUNT, "metrics": {"enabled": False}})
    runner, port, _ = await serve_app(config)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}/metrics") as r:
            assert r.status == 404
    finally:
        await runner.cleanup()


def test_a_short_token_is_refused_at_start(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump(
            {"account_id": ACCOUNT, "metrics": {"token": {"value": "short"}}, "listen": {"port": 0}}
        )
    )
    fedgate = str(Path(sys.executable).with_name("fedgate"))
    done = subprocess.run(
        [fedgate, "serve", "-c", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode != 0
    assert "metrics.token: must be at least 16 characters" in done.stderr


async def test_sts_store_and_provider_series(redis_url: str, redis_run_prefix: str) -> None:
    """A web-identity exchange over a real Redis store and a real issuer, read back from /metrics."""
    async with OIDCTestIssuer(path="/ci", audience="sts") as idp:
        provider = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{idp.issuer.removeprefix('http://')}"
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                }
            ],
        }
        config = config_from(
            {
                "account_id": ACCOUNT,
                "audit": {"sink": "none"},
                "store": {"backend": "redis", "url": redis_url, "prefix": f"{redis_run_prefix}metrics:"},
                "providers": [idp.provider_config()],
                "roles": [{"name": "ci", "trust_policy": trust}],
            }
        )
        runner, port, _ = await serve_app(config)
        try:
            async with aiohttp.ClientSession() as http:
                base = f"http://127.0.0.1:{port}/"
                form = {
                    "Action": "AssumeRoleWithWebIdentity",
                    "Version": "2011-06-15",
                    "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/ci",
                    "RoleSessionName": "job",
                    "WebIdentityToken": idp.mint(sub="repo:acme/app"),
                }
                async with http.post(base, data=form) as r:
                    assert r.status == 200, await r.text()
                async with http.post(
                    base, data={**form, "RoleArn": f"arn:aws:iam::{ACCOUNT}:role/nope"}
                ) as r:
                    assert r.status == 403
                async with http.get(base + "metrics") as r:
                    found = samples(await r.text())
        finally:
            await runner.cleanup()
    action = "AssumeRoleWithWebIdentity"
    assert value(found, "fedgate_requests_total", api="sts", action=action, code="OK") == 1
    assert value(found, "fedgate_requests_total", api="sts", action=action, code="AccessDenied") == 1
    assert value(found, "fedgate_credentials_issued_total", action=action) == 1
    assert value(found, "fedgate_decisions_total", api="sts", effect="Allow") == 1
    assert value(found, "fedgate_decisions_total", api="sts", effect="Deny") == 1
    assert (
        value(found, "fedgate_provider_refreshes_total", provider=idp.issuer, document="jwks", outcome="ok")
        == 1
    )
    # The replay guard spent the token's jti in Redis, timed at the store's boundary.
    stored = [k for k in found if k[0] == "fedgate_store_operation_duration_seconds_count" and found[k] > 0]
    assert stored


async def test_store_failures_are_counted_by_cause() -> None:
    config = config_from(
        {"account_id": ACCOUNT, "store": {"backend": "redis", "url": f"redis://127.0.0.1:{free_port()}/0"}}
    )
    runner, port, _ = await serve_app(config)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/readyz") as r:
                assert r.status == 503
            async with http.get(f"http://127.0.0.1:{port}/metrics") as r:
                found = samples(await r.text())
    finally:
        await runner.cleanup()
    errors = {dict(labels)["error"] for name, labels in found if name == "fedgate_store_errors_total"}
    assert errors and errors <= {"ConnectionError", "TimeoutError", "ServiceUnavailable"}


def test_sampled_counts_only_move_forward() -> None:
    """The audit sink's cumulative counts become counter increments, once each."""
    from gateway.metrics import Metrics

    metrics = Metrics()
    metrics.sample(
        catalog_revision=3, database_revision=7, lag_seconds=0.25, audit_spilled=5, audit_dropped=2
    )
    metrics.sample(catalog_revision=4, database_revision=7, lag_seconds=0.5, audit_spilled=5, audit_dropped=3)
    found = samples(metrics.exposition().decode())
    assert value(found, "fedgate_audit_events_spilled_total") == 5
    assert value(found, "fedgate_audit_events_dropped_total") == 3
    assert value(found, "fedgate_catalog_revision") == 4
    assert value(found, "fedgate_database_revision") == 7
    assert value(found, "fedgate_catalog_propagation_lag_seconds") == 0.5


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.sampled_from([0.0, 0.0004, 0.0005, 0.00051, 0.004, 0.01, 2.5, 29.9, 30.0, 31.0, 1e9]), max_size=30
    )
)
def test_tallied_observations_expose_what_direct_ones_would(seconds: list[float]) -> None:
    """The request path's tallies, flushed, are the series prometheus_client's own observe()
    and inc() make for the same observations: every bucket, the sum, the count."""
    from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

    from gateway.metrics import _LATENCY_BUCKETS, Metrics

    metrics = Metrics()
    registry = CollectorRegistry()
    latency = Histogram(
        "fedgate_upstream_request_duration_seconds",
        "",
        ["upstream"],
        buckets=_LATENCY_BUCKETS,
        registry=registry,
    )
    status = Counter("fedgate_upstream_responses", "", ["upstream", "status"], registry=registry)
    for n, answer in enumerate(seconds):
        metrics.upstream_answered("u", 200 + n % 2, answer)
        latency.labels("u").observe(answer)
        status.labels("u", str(200 + n % 2)).inc()
        if n == len(seconds) // 2:
            metrics.flush()  # tallies flushed in two parts add up
    metrics.flush()
    ours = samples(metrics.exposition().decode())
    theirs = samples(generate_latest(registry).decode())
    for (name, labels), expected in theirs.items():
        if not name.endswith("_created"):
            assert ours[name, labels] == pytest.approx(expected), (name, labels)
