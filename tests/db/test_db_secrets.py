"""Conformance: access keys and MFA devices, their secrets sealed under the key ring (both backends)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.credentials import KeyRing
from gateway.credentials.service import new_secret_access_key
from gateway.db import IamDatabase, KeyUsageRecorder
from gateway.db.records import AccessKeyUse
from gateway.db.schema import access_keys, mfa_devices
from gateway.errors import DeleteConflict, EntityAlreadyExists, InvalidClientTokenId, NoSuchEntity
from tests.conftest import free_port
from tests.db.conftest import ACCOUNT, open_database

SERIAL = f"arn:aws:iam::{ACCOUNT}:mfa/alice-phone"


async def _raw_column(db: IamDatabase, column: object, where: object) -> str:
    engine = create_async_engine(db.target.url)
    try:
        async with engine.connect() as conn:
            return str(await conn.scalar(select(column).where(where)))  # type: ignore[call-overload]
    finally:
        await engine.dispose()


async def test_access_keys_store_the_secret_sealed_and_open_it(db: IamDatabase) -> None:
    secret = new_secret_access_key()
    async with db.write() as tx:
        user = await tx.users.create("alice")
        key = await tx.access_keys.create(user.id, secret)
    assert re.fullmatch(r"AKIA[A-Z2-7]{16}", key.id)
    assert (key.user_id, key.status, key.last_used_at) == (user.id, "Active", None)
    assert secret not in repr(key) and key.sealed_secret not in repr(key)
    stored = await _raw_column(db, access_keys.c.secret_sealed, access_keys.c.id == key.id)
    assert secret not in stored and stored == key.sealed_secret
    assert db.open_access_key_secret(key) == secret
    assert (await db.load()).access_keys == (key,)


async def test_a_sealed_secret_is_bound_to_its_key_and_is_no_session_token(
    db: IamDatabase, keyring: KeyRing
) -> None:
    async with db.write() as tx:
        user = await tx.users.create("alice")
        first = await tx.access_keys.create(user.id, "a" * 40)
        second = await tx.access_keys.create(user.id, "b" * 40)
    swapped = type(first)(
        **{**{f: getattr(first, f) for f in first.__slots__}, "sealed_secret": second.sealed_secret}
    )
    with pytest.raises(ValueError, match="does not open"):
        db.open_access_key_secret(swapped)  # another row's ciphertext does not open here
    with pytest.raises(InvalidClientTokenId):
        keyring.unseal(first.sealed_secret)  # nor as a session token


async def test_access_key_status_listing_and_deletion(db: IamDatabase) -> None:
    async with db.write() as tx:
        user = await tx.users.create("alice")
        first = await tx.access_keys.create(user.id, "a" * 40)
        second = await tx.access_keys.create(user.id, "b" * 40, access_key_id="AKIAIMPORTEDKEY00001")
        inactive = await tx.access_keys.set_status(first.id, "Inactive")
        with pytest.raises(EntityAlreadyExists):
            await tx.access_keys.create(user.id, "c" * 40, access_key_id="AKIAIMPORTEDKEY00001")
        with pytest.raises(NoSuchEntity, match="user with id AIDAGONE"):
            await tx.access_keys.create("AIDAGONE", "c" * 40)
    assert inactive.status == "Inactive" and second.id == "AKIAIMPORTEDKEY00001"
    async with db.read() as tx:
        assert {k.id for k in await tx.access_keys.for_user(user.id)} == {first.id, second.id}
    async with db.write() as tx:
        await tx.access_keys.delete(first.id)
        with pytest.raises(NoSuchEntity, match=f"The Access Key with id {first.id} cannot be found."):
            await tx.access_keys.delete(first.id)
        with pytest.raises(ValueError):
            await tx.access_keys.set_status(second.id, "Disabled")  # type: ignore[arg-type]
    assert [k.id for k in (await db.load()).access_keys] == [second.id]


async def test_last_use_is_recorded_without_a_revision_and_never_goes_back(db: IamDatabase) -> None:
    async with db.write() as tx:
        user = await tx.users.create("alice")
        key = await tx.access_keys.create(user.id, "a" * 40)
    revision = await db.revision()
    now = datetime.now(UTC).replace(microsecond=0)
    await db.record_key_uses([AccessKeyUse(key.id, now, "s3", "eu-west-1")])
    await db.record_key_uses([AccessKeyUse(key.id, now - timedelta(hours=1), "sts", "us-east-1")])
    await db.record_key_uses([AccessKeyUse("AKIAUNKNOWN000000000", now, "s3", "eu-west-1")])
    async with db.read() as tx:
        used = await tx.access_keys.require(key.id)
    assert (used.last_used_at, used.last_used_service, used.last_used_region) == (now, "s3", "eu-west-1")
    assert await db.revision() == revision


async def test_mfa_devices_seal_their_seed_and_are_assigned_once(db: IamDatabase) -> None:
    seed = b"12345678901234567890"
    async with db.write() as tx:
        user = await tx.users.create("alice")
        device = await tx.mfa_devices.create(SERIAL, name="alice-phone", path="/", seed=seed, tags={"k": "v"})
        with pytest.raises(EntityAlreadyExists):
            await tx.mfa_devices.create(SERIAL, name="alice-phone", path="/", seed=seed)
    assert device.user_id is None and device.tags == (("k", "v"),) and db.open_mfa_seed(device) == seed
    stored = await _raw_column(db, mfa_devices.c.seed_sealed, mfa_devices.c.serial == SERIAL)
    assert seed.decode() not in stored
    at = datetime.now(UTC).replace(microsecond=0)
    async with db.write() as tx:
        enabled = await tx.mfa_devices.enable(SERIAL, user.id, at)
        with pytest.raises(EntityAlreadyExists):
            await tx.mfa_devices.enable(SERIAL, user.id, at)
        with pytest.raises(DeleteConflict, match="still in use"):
            await tx.mfa_devices.delete(SERIAL)
    assert (enabled.user_id, enabled.enabled_at) == (user.id, at)
    async with db.read() as tx:
        assert [d.serial for d in await tx.mfa_devices.for_user(user.id)] == [SERIAL]
    async with db.write() as tx:
        assert (await tx.mfa_devices.deactivate(SERIAL)).user_id is None
        await tx.mfa_devices.untag(SERIAL, ["K"])
        await tx.mfa_devices.delete(SERIAL)
        with pytest.raises(NoSuchEntity, match="doesn't exist"):
            await tx.mfa_devices.require(SERIAL)
    assert (await db.load()).mfa_devices == ()


async def test_key_ring_rotation_keeps_secrets_readable_and_reseal_frees_the_old_key(
    db: IamDatabase, database_url: str
) -> None:
    old = KeyRing({"k1": b"first key ring secret, 32 bytes!"}, "k1")
    async with db.write() as tx:
        user = await tx.users.create("alice")
        key = await tx.access_keys.create(user.id, "a" * 40)
        await tx.mfa_devices.create(SERIAL, name="m", path="/", seed=b"seed")
    rotated = KeyRing(
        {"k1": b"first key ring secret, 32 bytes!", "k2": b"the second key ring secret, 32b!"}, "k2"
    )
    new = open_database(database_url, rotated)
    await new.start()
    try:
        (stored,) = (await new.load()).access_keys
        assert new.open_access_key_secret(stored) == "a" * 40  # readable under the rotated ring
        assert await new.reseal() == 2
        assert await new.reseal() == 0  # nothing left under k1
        snapshot = await new.load()
    finally:
        await new.close()
    only_k2 = open_database(database_url, KeyRing({"k2": b"the second key ring secret, 32b!"}, "k2"))
    try:
        assert only_k2.open_access_key_secret(snapshot.access_keys[0]) == "a" * 40
        assert only_k2.open_mfa_seed(snapshot.mfa_devices[0]) == b"seed"
    finally:
        await only_k2.close()
    with pytest.raises(ValueError, match=key.id):
        open_database(database_url, old).open_access_key_secret(snapshot.access_keys[0])


async def test_reseal_leaves_values_no_key_opens(db: IamDatabase, database_url: str) -> None:
    async with db.write() as tx:
        user = await tx.users.create("alice")
        await tx.access_keys.create(user.id, "a" * 40)
    stranger = open_database(database_url, KeyRing({"zz": b"a ring that never sealed anything"}, "zz"))
    try:
        assert await stranger.reseal() == 0
    finally:
        await stranger.close()
    assert await _raw_column(db, access_keys.c.secret_key_id, access_keys.c.user_id == user.id) == "k1"


async def test_a_database_without_a_key_ring_cannot_seal(database_url: str, db: IamDatabase) -> None:
    unsealed = open_database(database_url, None)
    try:
        async with unsealed.write() as tx:
            user = await tx.users.create("alice")
        with pytest.raises(RuntimeError, match="key ring"):
            async with unsealed.write() as tx:
                await tx.access_keys.create(user.id, "a" * 40)
    finally:
        await unsealed.close()
    assert (await db.load()).access_keys == ()


async def test_the_usage_recorder_writes_each_keys_latest_use_in_the_background(db: IamDatabase) -> None:
    async with db.write() as tx:
        user = await tx.users.create("alice")
        key = await tx.access_keys.create(user.id, "a" * 40)
    revision = await db.revision()
    first = datetime.now(UTC).replace(microsecond=0)
    recorder = KeyUsageRecorder(db, interval=3600)
    recorder.note(key.id, service="s3", region="eu-west-1", at=first)
    recorder.note(key.id, service="sts", region="us-east-1", at=first + timedelta(seconds=5))  # newest wins
    assert repr(recorder) == "KeyUsageRecorder(pending=1)"
    await recorder.close()  # writes what is pending
    async with db.read() as tx:
        used = await tx.access_keys.require(key.id)
    assert (used.last_used_at, used.last_used_service) == (first + timedelta(seconds=5), "sts")
    assert await db.revision() == revision  # not an IAM change: replicas need not reload


async def test_the_usage_recorder_keeps_uses_while_the_database_is_away() -> None:
    unreachable = open_database(
        f"postgresql://postgres@127.0.0.1:{free_port()}/iam", None, connect_timeout_seconds=1
    )
    recorder = KeyUsageRecorder(unreachable, interval=3600)
    try:
        recorder.note("AKIAEXAMPLEEXAMPLE00", service="s3", region="eu-west-1")
        await recorder.flush()
        assert repr(recorder) == "KeyUsageRecorder(pending=1)"  # kept for the next flush
    finally:
        await unreachable.close()
