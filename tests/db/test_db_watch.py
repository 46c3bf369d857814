"""The revision watcher: polling (both backends), PostgreSQL notifications, local commits, failing
subscribers, and a database that goes away and comes back (through a proxy the test cuts)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.credentials import KeyRing
from gateway.db import IamDatabase, RevisionWatcher
from gateway.testing.tcpproxy import CuttableProxy
from tests.conftest import eventually
from tests.db.conftest import open_database


class Recorder:
    """A subscriber that remembers what it was told."""

    def __init__(self, fail: bool = False) -> None:
        self.revisions: list[int] = []
        self.confirmed: list[float] = []
        self.fail = fail

    async def refresh(self, revision: int) -> None:
        if self.fail:
            raise RuntimeError("this subscriber is broken")
        self.revisions.append(revision)

    def confirm(self, at: float) -> None:
        self.confirmed.append(at)


@pytest.fixture()
async def replica(db: IamDatabase, database_url: str, keyring: KeyRing) -> AsyncIterator[IamDatabase]:
    """A second database object on the same database: another replica's writes."""
    other = open_database(database_url, keyring)
    yield other
    await other.close()


async def test_polling_tells_subscribers_of_another_replicas_write(
    db: IamDatabase, replica: IamDatabase
) -> None:
    watcher = RevisionWatcher(db, poll_interval=0.05, listen=False)
    seen = Recorder()
    watcher.subscribe("test", seen.refresh, confirmed=seen.confirm)
    await watcher.start()
    try:
        start = await db.revision()
        assert seen.revisions == [start] and len(seen.confirmed) == 1  # brought up to date at start
        async with replica.write() as tx:
            await tx.users.create("alice")

        await eventually(lambda: seen.revisions[-1] == start + 1, what="the subscriber learns of the write")
        await eventually(lambda: len(seen.confirmed) > 3, what="each poll confirms")
        assert seen.confirmed == sorted(seen.confirmed)
    finally:
        await watcher.close()


async def test_a_local_commit_wakes_the_watcher_at_once(db: IamDatabase) -> None:
    watcher = RevisionWatcher(db, poll_interval=60, listen=False)  # no poll within the test
    seen = Recorder()
    watcher.subscribe("test", seen.refresh)
    await watcher.start()
    try:
        async with db.write() as tx:
            await tx.users.create("alice")
        await eventually(lambda: seen.revisions[-1] == watcher.revision and len(seen.revisions) == 2)
    finally:
        await watcher.close()


async def test_a_failing_subscriber_is_not_confirmed_and_does_not_starve_others(
    db: IamDatabase, replica: IamDatabase
) -> None:
    watcher = RevisionWatcher(db, poll_interval=0.05, listen=False)
    good, bad = Recorder(), Recorder()
    watcher.subscribe("good", good.refresh, confirmed=good.confirm)
    watcher.subscribe("bad", bad.refresh, confirmed=bad.confirm)
    await watcher.start()
    try:
        bad.fail = True
        async with replica.write() as tx:
            await tx.users.create("alice")
        await eventually(lambda: len(good.revisions) == 2 and len(good.confirmed) > 3)
        confirmed_before = len(bad.confirmed)
        assert await watcher.check()
        assert len(bad.confirmed) == confirmed_before and len(bad.revisions) == 1
        bad.fail = False
        await eventually(lambda: len(bad.revisions) == 2 and len(bad.confirmed) > confirmed_before)
    finally:
        await watcher.close()


async def test_start_fails_when_a_subscriber_cannot_load(db: IamDatabase) -> None:
    watcher = RevisionWatcher(db, poll_interval=1, listen=False)
    watcher.subscribe("bad", Recorder(fail=True).refresh)
    with pytest.raises(RuntimeError, match="broken"):
        await watcher.start()
    await watcher.close()


async def test_postgres_notifications_arrive_without_polling(postgres_url: str, keyring: KeyRing) -> None:
    db, writer = open_database(postgres_url, keyring), open_database(postgres_url, keyring)
    await db.start()
    watcher = RevisionWatcher(db, poll_interval=60, listen=True)  # only a notification can wake it
    seen = Recorder()
    watcher.subscribe("test", seen.refresh)
    await watcher.start()
    try:
        await eventually(lambda: watcher.listening, what="the notification connection is up")
        async with writer.write() as tx:
            await tx.users.create("alice")
        await eventually(lambda: seen.revisions == [0, 1], what="the notification wakes the watcher")
    finally:
        await watcher.close()
        await writer.close()
        await db.close()


async def test_a_database_that_goes_away_stops_confirmations_until_it_returns(
    postgres_url: str, keyring: KeyRing
) -> None:
    proxy = CuttableProxy.for_url(postgres_url)
    await proxy.start()
    db = open_database(
        proxy.url_through(postgres_url), keyring, connect_timeout_seconds=1, statement_timeout_seconds=1
    )
    writer = open_database(postgres_url, keyring)  # reaches the server directly
    await db.start()
    watcher = RevisionWatcher(db, poll_interval=0.05, listen=True, timeout=1)
    seen = Recorder()
    watcher.subscribe("test", seen.refresh, confirmed=seen.confirm)
    await watcher.start()
    try:
        await eventually(lambda: watcher.listening)
        await proxy.cut()
        assert not await watcher.check()
        confirmed = len(seen.confirmed)
        async with writer.write() as tx:  # a change the cut-off replica cannot see yet
            await tx.users.create("alice")
        assert not await watcher.check() and len(seen.confirmed) == confirmed and seen.revisions == [0]
        await proxy.restore()
        await eventually(lambda: seen.revisions == [0, 1], what="the change arrives after the outage")
        await eventually(lambda: watcher.listening, what="notifications resume")
        assert len(seen.confirmed) > confirmed
    finally:
        await watcher.close()
        await writer.close()
        await db.close()
        await proxy.close()
