"""Soak: a real gateway under steady load while its store, database, upstream and clients misbehave.

Run: ``.venv/bin/python bench/soak.py [--duration 60] [--concurrency 8]``.

Everything is real and on 127.0.0.1: a private ``redis-server`` (the store: replay marks), a new
PostgreSQL database on ``$DATABASE_URL``'s server (the IAM database: revocation state) reached
through a TCP proxy the soak can cut (:class:`gateway.testing.tcpproxy.CuttableProxy`), an aiohttp
upstream subprocess (it answers 2 KiB, or cuts a response mid-body on ``/bench/reset/...``) and one
``fedgate serve`` subprocess with an S3 upstream in ``resign`` mode.

Load, from this process: ``--concurrency`` workers sending pre-signed S3 GETs through the proxy
(SigV4, session, policy, re-signing: each needs the database's revocation state to be current) and
two workers sending ``AssumeRoleWithSAML`` with a few responses minted up front (each accepted once,
then refused as a replay: every call needs the store's replay check).

Faults, one phase each, on a schedule scaled to ``--duration``:

* ``redis down``: Redis stopped, then started again empty (a restart without persistence);
* ``database cut``: every connection to PostgreSQL dropped and new ones refused, longer than
  ``database.max_staleness_seconds``, then let through again;
* ``upstream down``: the upstream killed (connections refused), then started again;
* ``upstream hung``: the upstream SIGSTOPped (every read times out), then SIGCONTed;
* ``upstream resets``: a tenth of the GETs go to a path the upstream cuts mid-response;
* ``slow clients``: 200 connections that send half a request head and stall (slow loris), plus 200
  idle ones, beside the load;
* ``SIGTERM``: the gateway is told to stop while requests are in flight.

Printed: per phase, requests/s answered and every outcome by class (``200``, the AWS error code of
an error answer, ``cut`` for a response cut after its head, ``refused`` for a connection the
gateway did not accept); the recovery time of each fault (from the moment it was undone until the
first success of the kind of request it broke); the gateway's RSS at the start and at the end; and
what the requests in flight at SIGTERM got. It is a soak, not a benchmark against a peer: there is
no ratio, and the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import aiohttp
import asyncpg
import yaml

from gateway.credentials import CredentialService, KeyRing, Revocations
from gateway.sigv4 import HttpRequest, sign
from gateway.testing.redis import RedisServer, backdate_generation
from gateway.testing.saml import SAMLTestIdP
from gateway.testing.tcpproxy import CuttableProxy

ACCOUNT = "123456789012"
HOST = "bench.s3.local"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:saml-provider/corp"
PREFIX = "fedgate-soak:"
VENV_BIN = Path(sys.executable).parent
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
UPSTREAM_MAIN = """
import sys
from aiohttp import web
BODY = b"x" * 2048
async def handle(request):
    if "/reset/" in request.path:
        response = web.StreamResponse(headers={"Content-Length": str(len(BODY))})
        await response.prepare(request)
        await response.write(BODY[:512])
        request.transport.abort()
        return response
    return web.Response(body=BODY, content_type="application/octet-stream")
app = web.Application()
app.router.add_route("*", "/{tail:.*}", handle)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
# Fractions of --duration: (name, start, end of the fault). Between faults the load runs undisturbed.
SCHEDULE = (
    ("steady", 0.00, 0.10),
    ("redis down", 0.10, 0.17),
    ("database cut", 0.22, 0.34),
    ("upstream down", 0.40, 0.46),
    ("upstream hung", 0.53, 0.58),
    ("upstream resets", 0.65, 0.72),
    ("slow clients", 0.79, 0.88),
    ("steady", 0.95, 1.00),
)


@dataclass
class Outcome:
    kind: str  # "get" or "saml"
    sent: float
    done: float
    result: str  # "200", an error code, "cut", "refused"


@dataclass
class Soak:
    outcomes: list[Outcome] = field(default_factory=list)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    resets: bool = False

    def first_ok(self, kind: str, after: float) -> float | None:
        found = [o.done for o in self.outcomes if o.kind == kind and o.sent >= after and _ok(o)]
        return min(found) if found else None


def _ok(outcome: Outcome) -> bool:
    # A SAML response refused as a replay was decided by the store: it answered.
    return outcome.result == "200" or (outcome.kind == "saml" and outcome.result == "InvalidIdentityToken")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM if the soak dies without cleaning up (even SIGKILL)."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Upstream:
    """The aiohttp upstream subprocess, which the soak kills, restarts, stops and continues."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", UPSTREAM_MAIN, str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=_die_with_parent,
        )
        deadline = time.monotonic() + 30
        while True:  # listening: a restart is undone only then
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("soak: the upstream did not start") from None
                time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


def _serve(config: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(VENV_BIN / "fedgate"), "serve", "-c", str(config), "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,  # fine here: the soak starts no threads
        )


def _config(path: Path, *, secret: str, idp: SAMLTestIdP, redis_url: str, db_url: str, upstream: int) -> None:
    allow_read = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bench/*"}],
    }
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithSAML"}
        ],
    }
    doc = {
        "account_id": ACCOUNT,
        "log_level": "WARNING",
        "audit": {"sink": "none"},
        "clock_skew_seconds": 0,
        "listen": {"header_timeout": 2.0, "body_read_timeout": 2.0, "keepalive_timeout": 3.0},
        "keyring": {"active": "soak", "keys": [{"id": "soak", "secret": {"value": secret}}]},
        "store": {"backend": "redis", "url": redis_url, "prefix": PREFIX, "operation_timeout": 0.25},
        "database": {
            "url": db_url,
            # A bound the cut below outlasts, with room for a database shared with other work.
            "poll_interval_seconds": 0.5,
            "max_staleness_seconds": 4.0,
            "connect_timeout_seconds": 2.0,
            "statement_timeout_seconds": 2.0,
        },
        "providers": [idp.provider_config(name="corp")],
        "roles": [
            {"name": "bench", "trust_policy": trust, "policies": [{"name": "read", "document": allow_read}]}
        ],
        "upstreams": [
            {
                "name": "s3",
                "match": {"hosts": [HOST]},
                "target": f"http://127.0.0.1:{upstream}",
                "service": "s3",
                "mapping": "s3",
                "auth": "resign",
                "credentials": {
                    "access_key_id": {"value": "UP"},
                    "secret_access_key": {"value": "up-secret"},
                },
                "connect_timeout": 1.0,
                "read_timeout": 1.0,
                "total_timeout": 5.0,
            }
        ],
    }
    path.write_text(yaml.safe_dump(doc))


def _signed_gets(secret: str, folder: str, n: int) -> list[tuple[str, dict[str, str]]]:
    service = CredentialService(KeyRing({"soak": secret.encode()}, "soak"), Revocations.local())
    creds = service.issue(role_arn=ROLE, session_name="soak", duration_seconds=3600)
    now = datetime.now(UTC)
    pool = []
    for i in range(n):
        path = f"/bench/{folder}/{i:04d}.bin"
        out = sign(
            HttpRequest("GET", path, "", (("Host", HOST),), EMPTY_SHA256),
            access_key_id=creds.access_key_id,
            secret_key=creds.secret_access_key,
            session_token=creds.session_token,
            region="us-east-1",
            service="s3",
            now=now,
            normalize_path=False,
            content_sha256_header=True,
        )
        pool.append((path, dict(out.headers)))
    return pool


def _code(text: str) -> str:
    for start, end in (("<Code>", "</Code>"),):
        i = text.find(start)
        if i >= 0:
            return text[i + len(start) : text.find(end, i)]
    return "?"


async def _request(http: aiohttp.ClientSession, kind: str, method: str, url: str, **options: Any) -> Outcome:
    sent = time.monotonic()
    try:
        async with http.request(method, url, **options) as response:
            status = response.status
            try:
                body = await response.read()
            except (aiohttp.ClientPayloadError, aiohttp.ClientConnectionError):
                return Outcome(kind, sent, time.monotonic(), "cut")
            result = "200" if status == 200 else _code(body.decode(errors="replace"))
    except aiohttp.ClientConnectorError:
        result = "refused"
    except (aiohttp.ClientError, OSError, TimeoutError):
        result = "cut"
    return Outcome(kind, sent, time.monotonic(), result)


async def _get_worker(
    http: aiohttp.ClientSession, url: str, soak: Soak, gets: list[Any], resets: list[Any]
) -> None:
    n = secrets.randbelow(len(gets))
    while not soak.stop.is_set():
        n += 1
        path, headers = resets[n % len(resets)] if soak.resets and n % 10 == 0 else gets[n % len(gets)]
        outcome = await _request(http, "get", "GET", url + path, headers=headers)
        soak.outcomes.append(outcome)
        if outcome.result in ("refused", "cut"):
            await asyncio.sleep(0.01)


async def _saml_worker(http: aiohttp.ClientSession, url: str, soak: Soak, bodies: list[str]) -> None:
    n = 0
    while not soak.stop.is_set():
        n += 1
        body = bodies[n % len(bodies)]
        soak.outcomes.append(await _request(http, "saml", "POST", url + "/", data=body, headers=FORM))


def _saml_body(idp: SAMLTestIdP) -> str:
    assertion = SAMLTestIdP.b64(idp.response(roles=[(ROLE, PROVIDER)]))
    fields = {
        "Action": "AssumeRoleWithSAML",
        "Version": "2011-06-15",
        "RoleArn": ROLE,
        "PrincipalArn": PROVIDER,
    }
    return urlencode({**fields, "SAMLAssertion": assertion})


async def _slow_clients(port: int, soak: Soak, until: float) -> dict[str, tuple[int, int]]:
    """200 slow-loris connections (half a request head, then nothing) and 200 idle ones (nothing at
    all); returns, for each kind, how many were opened and how many the gateway closed by ``until``."""
    opened: dict[str, list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]] = {
        "half a head": [],
        "idle": [],
    }
    for i in range(400):
        with contextlib.suppress(OSError):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            if i % 2 == 0:
                writer.write(b"GET /bench/x HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\nX-Slow: ")
            opened["half a head" if i % 2 == 0 else "idle"].append((reader, writer))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(soak.stop.wait(), max(0.0, until - time.monotonic()))
    counts = {kind: (len(pairs), sum(1 for r, _ in pairs if r.at_eof())) for kind, pairs in opened.items()}
    for pairs in opened.values():
        for _, writer in pairs:
            writer.transport.abort()
    return counts


async def _wait(check: Callable[[], Awaitable[bool]], what: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: gave up waiting for {what}")
        await asyncio.sleep(0.05)


async def _ready(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url + "/readyz") as response:
            return response.status == 200
    except (aiohttp.ClientError, OSError):
        return False


async def run(args: argparse.Namespace, workdir: Path) -> None:
    admin = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    db_name = f"fedgate_soak_{secrets.token_hex(4)}"
    conn = await asyncpg.connect(admin, timeout=5)
    await conn.execute(f'CREATE DATABASE "{db_name}"')
    await conn.close()
    db_url = urlunsplit(urlsplit(admin)._replace(path=f"/{db_name}"))
    proxy = CuttableProxy.for_url(db_url)
    await proxy.start()
    secret = secrets.token_urlsafe(48)
    upstream = Upstream()
    gateway: subprocess.Popen[bytes] | None = None
    soak = Soak()
    recovery: dict[str, float] = {}
    with RedisServer() as redis_server, SAMLTestIdP() as idp:
        try:
            upstream.start()
            with redis_server.client() as client:
                backdate_generation(client, PREFIX, time.time() - 3600)
            config = workdir / "soak.yaml"
            _config(
                config,
                secret=secret,
                idp=idp,
                redis_url=redis_server.url,
                db_url=proxy.url_through(db_url),
                upstream=upstream.port,
            )
            port = _free_port()
            url = f"http://127.0.0.1:{port}"
            gateway = _serve(config, port, workdir / "fedgate.log")
            gets = _signed_gets(secret, "objects", 256)
            resets = _signed_gets(secret, "reset", 16)
            bodies = [_saml_body(idp) for _ in range(16)]
            limits = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(
                connector=limits, timeout=aiohttp.ClientTimeout(total=10)
            ) as http:
                await _wait(lambda: _ready(http, url), "the gateway to be ready")
                workers = [
                    *(
                        asyncio.create_task(_get_worker(http, url, soak, gets, resets))
                        for _ in range(args.concurrency)
                    ),
                    *(asyncio.create_task(_saml_worker(http, url, soak, bodies)) for _ in range(2)),
                ]
                start = time.monotonic()

                def at(fraction: float) -> float:
                    return start + fraction * float(args.duration)

                await asyncio.sleep(min(3.0, 0.05 * args.duration))
                rss_start = _rss_kib(gateway.pid)
                slow: dict[str, tuple[int, int]] = {}
                for name, begin, end in SCHEDULE:
                    await asyncio.sleep(max(0.0, at(begin) - time.monotonic()))
                    if name == "redis down":
                        redis_server.stop()
                    elif name == "database cut":
                        await proxy.cut()
                    elif name == "upstream down":
                        upstream.kill()
                    elif name == "upstream hung":
                        upstream.pause()
                    elif name == "upstream resets":
                        soak.resets = True
                    elif name == "slow clients":
                        slow = await _slow_clients(port, soak, at(end))
                    await asyncio.sleep(max(0.0, at(end) - time.monotonic()))
                    if name == "redis down":
                        redis_server.start()  # returns once it answers PING
                        recovery[name] = await _recovered(soak, "saml", time.monotonic())
                    elif name == "database cut":
                        await proxy.restore()
                        recovery[name] = await _recovered(soak, "get", time.monotonic())
                    elif name == "upstream down":
                        upstream.start()
                        recovery[name] = await _recovered(soak, "get", time.monotonic())
                    elif name == "upstream hung":
                        upstream.resume()
                        recovery[name] = await _recovered(soak, "get", time.monotonic())
                    elif name == "upstream resets":
                        soak.resets = False
                rss_end = _rss_kib(gateway.pid)
                # SIGTERM with requests in flight: what do they get, and does the process exit 0?
                in_flight_from = time.monotonic()
                gateway.send_signal(signal.SIGTERM)
                await asyncio.sleep(0.5)
                soak.stop.set()
                await asyncio.gather(*workers, return_exceptions=True)
                exit_code = gateway.wait(30)
            _report(soak, start, args.duration, recovery, rss_start, rss_end, slow, in_flight_from, exit_code)
            _log_summary(workdir / "fedgate.log")
        finally:
            soak.stop.set()
            if gateway is not None and gateway.poll() is None:
                gateway.kill()
                gateway.wait()
            upstream.kill()
            await proxy.close()
            conn = await asyncpg.connect(admin, timeout=5)
            await conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
            await conn.close()


async def _recovered(soak: Soak, kind: str, undone: float, within: float = 30.0) -> float:
    """Seconds from ``undone`` until the first success of a ``kind`` request sent after it."""
    deadline = undone + within
    while (first := soak.first_ok(kind, undone)) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: no {kind} request succeeded within {within:.0f} s of the fault's end")
        await asyncio.sleep(0.02)
    return first - undone


def _report(
    soak: Soak,
    start: float,
    duration: float,
    recovery: dict[str, float],
    rss_start: int,
    rss_end: int,
    slow: dict[str, tuple[int, int]],
    sigterm: float,
    exit_code: int,
) -> None:
    print(f"soak: {duration:.0f} s, {len(soak.outcomes)} requests")
    print(f"{'phase':<16} {'from-to s':>10} {'req/s':>7}  outcomes (GET | SAML)")
    bounds = [(name, start + b * duration, start + e * duration) for name, b, e in SCHEDULE]
    # The stretches between faults are phases of their own ("after ..."), where recovery shows.
    phases: list[tuple[str, float, float]] = []
    for i, (name, b, e) in enumerate(bounds):
        phases.append((name, b, e))
        following = bounds[i + 1][1] if i + 1 < len(bounds) else sigterm
        if following > e + 0.5:
            phases.append((f"after {name}" if name != "steady" else "steady", e, following))
    for name, b, e in phases:
        inside = [o for o in soak.outcomes if b <= o.sent < e]
        answered = sum(1 for o in inside if o.result not in ("refused", "cut"))
        by_kind = {k: Counter(o.result for o in inside if o.kind == k) for k in ("get", "saml")}
        text = " | ".join(", ".join(f"{r} {n}" for r, n in c.most_common()) or "-" for c in by_kind.values())
        print(f"{name:<16} {b - start:>4.0f}-{e - start:<5.0f} {answered / max(e - b, 1e-9):>7.0f}  {text}")
    print("recovery (fault undone -> first success of what it broke):")
    for name, seconds in recovery.items():
        print(f"  {name:<16} {seconds:>7.3f} s")
    for kind, (opened, closed) in slow.items():
        print(f"slow clients ({kind}): {opened} opened, {closed} closed by the gateway within the phase")
    print(f"gateway RSS: {rss_start / 1024:.1f} MiB at the start, {rss_end / 1024:.1f} MiB at the end")
    flight = Counter(o.result for o in soak.outcomes if o.sent < sigterm <= o.done)
    after = Counter(o.result for o in soak.outcomes if o.sent >= sigterm)
    print(f"SIGTERM: in flight then {dict(flight)}; sent after {dict(after)}; exit code {exit_code}")


def _log_summary(path: Path) -> None:
    """What the gateway logged, by level and message, and how many lines carried a traceback."""
    lines = path.read_text(errors="replace").splitlines()
    counts: Counter[str] = Counter()
    tracebacks = 0
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            counts[f"(not JSON) {line[:80]}"] += 1
            continue
        counts[f"{record.get('level', '?')}: {record.get('message', '')}"] += 1
        tracebacks += "exception" in record
    print(f"gateway log: {len(lines)} lines, {tracebacks} with a traceback")
    for message, n in counts.most_common(12):
        print(f"  {n:>6}  {message}")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--concurrency", type=int, default=8, help="GET workers (default 8)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    with tempfile.TemporaryDirectory(prefix="fedgate-soak-") as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
