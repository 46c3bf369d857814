"""Benchmark: how fast an IAM change written on one replica is enforced by another.

Run with ``.venv/bin/python bench/iam_propagation_bench.py [--rounds N] [--users U]``. Two replicas
(each its own database engine, revision watcher, catalog feed and access-key resolver, exactly as
two gateways build them at start-up) share one PostgreSQL database holding ``U`` users with a key
and an inline policy each (so every rebuild compiles a catalog of that size). Each round writes one
change on replica A and, from the moment it has committed, asks replica B every millisecond until
B enforces it:

- a key made Inactive (B's resolver refuses it), then Active again (B accepts it);
- an inline policy removed from the user (B's decision turns to implicitDeny), then put back.

Printed: p50/p99/max of that propagation delay and of the write itself, with LISTEN/NOTIFY (the
default) and, as the peer, with polling only (``listen: false``), both polling at the default
``database.poll_interval_seconds``; and whether the goal (p99 under 1 s) is met. PostgreSQL is the
server ``$DATABASE_URL`` names (an administrator's URL, default
``postgresql://postgres@127.0.0.1:5432/postgres``); the benchmark creates a database of its own
there and drops it on exit, Ctrl-C or SIGTERM. Takes ~40 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import signal
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from gateway.config import DatabaseSettings
from gateway.context import Transport
from gateway.credentials import KeyRing, new_secret_access_key
from gateway.db import DatabaseRuntime, IamDatabase, start_database
from gateway.errors import InvalidClientTokenId
from gateway.iam import permissions
from gateway.iam.accesskeys import AccessKeys
from gateway.iam.catalog import Catalog
from gateway.iam.records import CatalogRecords
from gateway.iam.sync import CatalogFeed

ACCOUNT = "123456789012"
POLL = DatabaseSettings().poll_interval_seconds  # the default
POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}
TRANSPORT = Transport(source_ip="127.0.0.1", secure=True, user_agent=None, referer=None, now=time.time())
CHECK = [permissions.Check("s3:GetObject", "arn:aws:s3:::data/k")]


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def populate(db: IamDatabase, users: int, prefix: str) -> tuple[str, str, str]:
    """``users`` users with a key and a policy each; the id, key id and secret of the first."""
    first: tuple[str, str, str] | None = None
    async with db.write() as tx:
        for i in range(users):
            user = await tx.users.create(f"{prefix}{i:04d}")
            await tx.inline_policies.put("user", user.id, "read", json.dumps(POLICY))
            secret = new_secret_access_key()
            key = await tx.access_keys.create(user.id, secret)
            if first is None:
                first = (user.id, key.id, secret)
    assert first is not None
    return first


class Replica:
    """What a gateway builds: the database runtime, the catalog it feeds, the key resolver."""

    def __init__(self, runtime: DatabaseRuntime, catalog: Catalog, ring: KeyRing) -> None:
        self.runtime = runtime
        self.catalog = catalog
        self.keys = AccessKeys(catalog, ring)

    def key_accepted(self, key_id: str) -> bool:
        try:
            self.keys.resolve(key_id)
        except InvalidClientTokenId:
            return False
        return True

    def allowed(self, key_id: str) -> bool:
        caller, _ = self.keys.resolve(key_id)
        snapshot = self.catalog.snapshot
        context = permissions.session_context(snapshot, caller, TRANSPORT, region="us-east-1")
        return permissions.decide(snapshot, caller, CHECK, context).allowed


async def measure(url: str, rounds: int, *, listen: bool, users: int) -> tuple[list[float], list[float], int]:
    """(propagation delays, write latencies, catalog revision) over ``rounds`` rounds of 4 changes."""
    ring = KeyRing({"k": secrets.token_bytes(32)}, "k")
    settings = DatabaseSettings(url=url, poll_interval_seconds=POLL, listen=listen)
    async with AsyncExitStack() as stack:
        replicas: list[Replica] = []
        for i in range(2):
            runtime = await start_database(settings, account_id=ACCOUNT, keyring=ring)
            stack.push_async_callback(runtime.close)
            if i == 0:
                prefix = "notified" if listen else "polled"
                user_id, key_id, _ = await populate(runtime.database, users, prefix)
            catalog = await CatalogFeed(CatalogRecords(ACCOUNT), runtime.database).start(runtime.watcher)
            replicas.append(Replica(runtime, catalog, ring))
        a, b = replicas
        if listen:
            while not b.runtime.watcher.listening:  # noqa: ASYNC110 - a property, no event to wait on
                await asyncio.sleep(0.01)
        db = a.runtime.database

        async def set_status(status: str) -> None:
            async with db.write() as tx:
                await tx.access_keys.set_status(key_id, status)  # type: ignore[arg-type]

        async def drop_policy() -> None:
            async with db.write() as tx:
                await tx.inline_policies.delete("user", user_id, "read")

        async def put_policy() -> None:
            async with db.write() as tx:
                await tx.inline_policies.put("user", user_id, "read", json.dumps(POLICY))

        changes: list[tuple[Callable[[], Awaitable[None]], Callable[[], bool]]] = [
            (lambda: set_status("Inactive"), lambda: not b.key_accepted(key_id)),
            (lambda: set_status("Active"), lambda: b.key_accepted(key_id)),
            (drop_policy, lambda: not b.allowed(key_id)),
            (put_policy, lambda: b.allowed(key_id)),
        ]
        delays, writes = [], []
        for _ in range(rounds):
            for write, enforced in changes:
                await asyncio.sleep(random.uniform(0.005, 0.05 if listen else POLL))
                started = time.perf_counter()
                await write()
                committed = time.perf_counter()
                while not enforced():  # noqa: ASYNC110 - B is asked as a request would ask it
                    await asyncio.sleep(0.001)
                delays.append(time.perf_counter() - committed)
                writes.append(committed - started)
        return delays, writes, b.catalog.snapshot.revision


def _row(name: str, delays: list[float], writes: list[float]) -> str:
    ms = [d * 1000 for d in delays]
    return (
        f"{name:<34} {statistics.median(ms):8.1f} {_quantile(ms, 0.99):8.1f} {max(ms):8.1f}"
        f" {statistics.median(writes) * 1000:9.1f}  {len(ms)}"
    )


async def run(database_url: str, rounds: int, users: int) -> None:
    print(f"IAM change propagation between two replicas ({users} users, polling every {POLL:g} s)")
    print(f"{'':<34} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'write ms':>9}  changes")
    notify_delays, notify_writes, _ = await measure(database_url, rounds, listen=True, users=users)
    print(_row("PostgreSQL, LISTEN/NOTIFY", notify_delays, notify_writes), flush=True)
    poll_delays, poll_writes, _ = await measure(database_url, max(1, rounds // 2), listen=False, users=users)
    print(_row("PostgreSQL, polling only (peer)", poll_delays, poll_writes), flush=True)
    ratio = statistics.median(poll_delays) / statistics.median(notify_delays)
    print(f"notifications cut the median propagation {ratio:.1f}x against polling alone")
    for name, delays in (("notified", notify_delays), ("polled", poll_delays)):
        p99 = _quantile(delays, 0.99)
        print(f"goal < 1000 ms at p99, {name}: {'met' if p99 < 1.0 else 'NOT met'} ({p99 * 1000:.0f} ms)")


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10, help="rounds of 4 changes, notified (default 10)")
    parser.add_argument("--users", type=int, default=200, help="users in the catalog (default 200)")
    args = parser.parse_args(argv)
    if not 0 < args.rounds <= 100 or not 0 < args.users <= 5000:
        parser.error("bounded runs only: rounds in (0, 100], users in (0, 5000]")
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
        asyncio.run(run(database_url, args.rounds, args.users))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        asyncio.run(_admin(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return 0


if __name__ == "__main__":
    sys.exit(main())
