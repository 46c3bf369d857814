"""Benchmark: how fast a revocation written on one replica is enforced by another.

Run with ``.venv/bin/python bench/revocation_bench.py [--rounds N]`` (N rounds for each polling mode,
5 N for notifications). Two replicas (each its own
database engine, watcher and in-memory revocation state, as two gateways have) share one database.
Each round issues a session, revokes its role on replica A, and from the moment that write has
committed polls replica B's ``validate`` every millisecond until it refuses the session. Printed:
p50/p99/max of that propagation delay and of the write itself, for

- PostgreSQL with LISTEN/NOTIFY (the default), polling as the safety net;
- PostgreSQL polling only (``listen: false``): the peer, what notifications buy;
- SQLite polling only (one host, several workers on one file);

all polling at the default ``database.poll_interval_seconds``.

The goal is propagation under 1 s. Rounds start at random moments, so polling is met at every
phase. PostgreSQL is the server ``$DATABASE_URL`` names (an administrator's URL, default
``postgresql://postgres@127.0.0.1:5432/postgres``); the benchmark creates a database of its own there
and drops it on exit, Ctrl-C or SIGTERM. Takes ~50 s.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway.config import DatabaseSettings
from gateway.credentials import CredentialService, KeyRing
from gateway.db import DatabaseRuntime, start_database
from gateway.errors import InvalidClientTokenId

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/bench"
POLL = DatabaseSettings().poll_interval_seconds  # the default


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure(url: str, rounds: int, *, listen: bool) -> tuple[list[float], list[float]]:
    """(propagation delays, write latencies) in seconds over ``rounds`` rounds.

    Polling is met at a random phase: each round starts after a random pause of up to one poll
    interval (a notification does not depend on it, so those rounds pause briefly).
    """
    ring = KeyRing({"k": secrets.token_bytes(32)}, "k")
    settings = DatabaseSettings(url=url, poll_interval_seconds=POLL, listen=listen)
    replicas: list[DatabaseRuntime] = []
    try:
        for _ in range(2):
            replicas.append(await start_database(settings, account_id=ACCOUNT, keyring=ring))
        a = CredentialService(ring, replicas[0].revocations)
        b = CredentialService(ring, replicas[1].revocations)
        if listen:
            while not replicas[1].watcher.listening:  # noqa: ASYNC110 - a property, no event to wait on
                await asyncio.sleep(0.01)
        delays, writes = [], []
        for _ in range(rounds):
            await asyncio.sleep(random.uniform(0.005, 0.05 if listen else POLL))
            creds = a.issue(role_arn=ROLE, session_name="s", duration_seconds=900)
            now = creds.claims.issued_at + 1
            await asyncio.sleep(0.002)  # the cutoff must fall after the session was issued
            started = time.perf_counter()
            await a.revoke_role_sessions(ROLE, before=time.time())
            committed = time.perf_counter()
            while True:
                try:
                    await b.validate(creds.access_key_id, creds.session_token, now=now)
                except InvalidClientTokenId:
                    break
                await asyncio.sleep(0.001)
            delays.append(time.perf_counter() - committed)
            writes.append(committed - started)
        return delays, writes
    finally:
        for replica in replicas:
            await replica.close()


def _row(name: str, delays: list[float], writes: list[float]) -> str:
    ms = [d * 1000 for d in delays]
    return (
        f"{name:<34} {statistics.median(ms):8.1f} {_quantile(ms, 0.99):8.1f} {max(ms):8.1f}"
        f" {statistics.median(writes) * 1000:9.1f}  {len(ms)}"
    )


async def run(database_url: str, sqlite_url: str, rounds: int) -> None:
    print(f"revocation propagation between two replicas (polling every {POLL:g} s)")
    print(f"{'':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'write ms':>9}  rounds")
    notify = await measure(database_url, 5 * rounds, listen=True)
    print(_row("PostgreSQL, LISTEN/NOTIFY", *notify), flush=True)
    polling = await measure(database_url, rounds, listen=False)
    print(_row("PostgreSQL, polling only (peer)", *polling), flush=True)
    sqlite = await measure(sqlite_url, rounds, listen=False)
    print(_row("SQLite file, polling only", *sqlite), flush=True)
    ratio = statistics.median(polling[0]) / statistics.median(notify[0])
    print(f"notifications cut the median propagation {ratio:.0f}x against polling alone")
    for name, (delays, _) in (("notified", notify), ("polled", polling), ("SQLite", sqlite)):
        p99 = _quantile(delays, 0.99)
        print(f"goal < 1000 ms at p99, {name}: {'met' if p99 < 1.0 else 'NOT met'} ({p99 * 1000:.0f} ms)")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rounds", type=int, default=20, help="rounds per polling mode; 5x as many notified (default 20)"
    )
    args = parser.parse_args(argv)
    if not 0 < args.rounds <= 200:
        parser.error("bounded runs only: rounds in (0, 200]")
    admin_url = os.environ.get("DATABASE_URL") or "postgresql://postgres@127.0.0.1:5432/postgres"
    name = f"fedgate_bench_{secrets.token_hex(6)}"
    database_url = urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    signal.signal(signal.SIGTERM, _terminate)  # run_all.py's time limit unwinds like Ctrl-C
    try:
        asyncio.run(_admin(admin_url, f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        print(f"no PostgreSQL at $DATABASE_URL ({type(exc).__name__}); start one", file=sys.stderr)
        return 1
    try:
        with tempfile.TemporaryDirectory(prefix="fedgate-revocation-bench-") as workdir:
            sqlite_url = f"sqlite:///{Path(workdir) / 'iam.db'}"
            asyncio.run(run(database_url, sqlite_url, args.rounds))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
