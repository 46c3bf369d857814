"""Conformance: all-or-nothing, serialized write transactions, the revision, consistent reads, and
monotonic revocation cutoffs (both backends, several database objects playing replicas)."""

from __future__ import annotations

import asyncio

import pytest

from gateway.credentials import KeyRing
from gateway.db import IamDatabase
from gateway.errors import EntityAlreadyExists
from tests.db.conftest import open_database

ROLE = "arn:aws:iam::123456789012:role/app"


class Boom(Exception):
    pass


async def test_a_block_that_raises_changes_nothing(db: IamDatabase) -> None:
    revision = await db.revision()
    with pytest.raises(Boom):
        async with db.write() as tx:
            user = await tx.users.create("alice")
            await tx.access_keys.create(user.id, "s" * 40)
            await tx.revocations.raise_cutoff("role", ROLE, 100.0)
            raise Boom
    snapshot = await db.load()
    assert (snapshot.users, snapshot.access_keys, snapshot.revocations) == ((), (), ())
    assert snapshot.revision == revision


async def test_a_failing_operation_rolls_back_the_earlier_ones(db: IamDatabase) -> None:
    async with db.write() as tx:
        await tx.users.create("bob")
    with pytest.raises(EntityAlreadyExists):
        async with db.write() as tx:
            await tx.groups.create("devs")
            await tx.users.create("BOB")
    assert (await db.load()).groups == ()


async def test_each_committed_write_bumps_the_revision_once_and_reads_do_not(db: IamDatabase) -> None:
    start = await db.revision()
    async with db.write() as tx:
        assert tx.revision == start + 1 and not tx.changed
        await tx.users.create("a")
        await tx.users.create("b")
        assert tx.changed
    assert await db.revision() == start + 1
    async with db.write() as tx:
        await tx.users.get("a")  # nothing written: nothing to tell the replicas
    async with db.read() as tx:
        assert tx.revision == start + 1
    assert await db.revision() == start + 1
    assert (await db.load()).revision == start + 1


async def test_read_transactions_refuse_to_write(db: IamDatabase) -> None:
    with pytest.raises(RuntimeError, match="read transaction"):
        async with db.read() as tx:
            await tx.users.create("alice")
    assert (await db.load()).users == ()


async def test_concurrent_writers_on_two_replicas_cannot_race_a_quota(
    db: IamDatabase, database_url: str, keyring: KeyRing
) -> None:
    other = open_database(database_url, keyring)
    limit = 3

    async def create_if_room(replica: IamDatabase, n: int) -> None:
        async with replica.write() as tx:
            count = await tx.users.count()
            await asyncio.sleep(0.01)  # a window in which an unserialized writer would also see `count`
            if count < limit:
                await tx.users.create(f"user{n}")

    try:
        start = await db.revision()
        await asyncio.gather(*(create_if_room(db if n % 2 else other, n) for n in range(8)))
        snapshot = await db.load()
    finally:
        await other.close()
    assert len(snapshot.users) == limit
    assert snapshot.revision == start + limit


async def test_a_read_sees_one_state_while_another_replica_writes(
    db: IamDatabase, database_url: str, keyring: KeyRing
) -> None:
    writer = open_database(database_url, keyring)
    try:
        async with db.read() as tx:
            assert await tx.users.list() == []
            async with writer.write() as wtx:
                await wtx.users.create("alice")
            assert await tx.users.list() == []  # still the state the transaction began with
            seen = tx.revision
        assert [u.name for u in (await db.load()).users] == ["alice"]
        assert await db.revision() == seen + 1
    finally:
        await writer.close()


async def test_revocation_cutoffs_only_move_forward(db: IamDatabase) -> None:
    assert await db.raise_cutoff("role", ROLE, 1_700_000_010.25) == 1_700_000_010.25
    assert await db.raise_cutoff("role", ROLE, 1_700_000_000.0) == 1_700_000_010.25
    assert await db.raise_cutoff("role", ROLE, 1_700_000_020.5) == 1_700_000_020.5
    async with db.read() as tx:
        assert await tx.revocations.get("role", ROLE) == 1_700_000_020.5
        assert await tx.revocations.get("role", ROLE + "x") is None
    with pytest.raises(ValueError, match="finite"):
        await db.raise_cutoff("role", ROLE, float("inf"))


async def test_cutoffs_keep_millisecond_precision_exactly(db: IamDatabase) -> None:
    issued = round(1_777_777_777.123456, 3)  # what a session token carries
    await db.raise_cutoff("role", ROLE, issued)
    (record,) = (await db.load()).revocations
    assert record.cutoff == issued


async def test_revocations_since_reads_only_what_changed_at_one_revision(db: IamDatabase) -> None:
    await db.raise_cutoff("role", ROLE, 10.0)
    entries, first = await db.revocations_since(0)
    assert [(e.scope, e.cutoff) for e in entries] == [(ROLE, 10.0)]
    await db.raise_cutoff("role", ROLE + "2", 20.0)
    await db.raise_cutoff("role", ROLE, 5.0)  # lower: the row keeps its cutoff and its revision
    entries, second = await db.revocations_since(first)
    assert [(e.scope, e.cutoff) for e in entries] == [(ROLE + "2", 20.0)]
    assert second > first
    assert await db.revocations_since(second) == ([], second)
