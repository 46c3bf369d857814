"""One catalog, two sources: the YAML's records and the IAM database's, rebuilt and swapped when the
database's revision moves; on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.credentials import KeyRing
from gateway.db import IamDatabase, RevisionWatcher
from gateway.errors import InvalidClientTokenId
from gateway.iam.accesskeys import AccessKeys
from gateway.iam.records import (
    CatalogRecords,
    InlinePolicyRecord,
    PolicyRecord,
    UserRecord,
)
from gateway.iam.sync import CatalogFeed
from tests.db.conftest import open_database

ACCOUNT = "123456789012"
RING = KeyRing({"k1": b"first key ring secret, 32 bytes!"}, "k1")
READ = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"}]}
CONFIG = CatalogRecords(
    ACCOUNT,
    policies=(PolicyRecord("read", READ),),
    users=(UserRecord("admin", inline_policies=(InlinePolicyRecord("all", READ),)),),
)
SECRET = "s" * 40


@pytest.fixture()
async def db(fresh_database_url: str) -> AsyncIterator[IamDatabase]:
    database = open_database(fresh_database_url, RING)
    await database.start()
    yield database
    await database.close()


@pytest.fixture()
async def watcher(db: IamDatabase) -> AsyncIterator[RevisionWatcher]:
    watching = RevisionWatcher(db, poll_interval=3600, listen=False)
    await watching.start()
    yield watching
    await watching.close()


async def test_the_catalog_holds_both_sources_and_follows_the_database(
    db: IamDatabase, watcher: RevisionWatcher
) -> None:
    async with db.write() as tx:
        group = await tx.groups.create("devs")
        await tx.attachments.attach("group", group.id, f"arn:aws:iam::{ACCOUNT}:policy/read")
        dev = await tx.users.create("dev", path="/team/")
        await tx.groups.add_member(group.id, dev.id)
        await tx.inline_policies.put("user", dev.id, "own", json.dumps(READ))
        key = await tx.access_keys.create(dev.id, SECRET)
        await tx.policies.create("api-policy", document=json.dumps(READ))
    catalog = await CatalogFeed(CONFIG, db).start(watcher)
    snapshot = catalog.snapshot
    admin = snapshot.user_named("admin")
    found = snapshot.user_named("dev")
    assert admin is not None and admin.source == "config"
    assert found is not None and found.source == "api" and found.user_id == dev.id
    assert found.arn == f"arn:aws:iam::{ACCOUNT}:user/team/dev"
    assert [g.name for g in found.groups] == ["devs"] and found.groups[0].managed[0].name == "read"
    assert snapshot.source_of("user", "ADMIN") == "config" and snapshot.source_of("user", "dev") == "api"
    assert snapshot.source_of("policy", "api-policy") == "api" and snapshot.source_of("role", "x") is None
    keys = AccessKeys(catalog, RING)
    caller, secret = keys.resolve(key.id)
    assert caller.arn == found.arn and secret == SECRET

    async with db.write() as tx:
        await tx.access_keys.set_status(key.id, "Inactive")
    await watcher.check()
    assert catalog.snapshot.revision > snapshot.revision
    with pytest.raises(InvalidClientTokenId):
        keys.resolve(key.id)
    async with db.write() as tx:
        await tx.access_keys.delete(key.id)
    await watcher.check()
    with pytest.raises(InvalidClientTokenId):
        keys.resolve(key.id)


async def test_a_config_name_is_taken_and_the_database_entity_left_out(
    db: IamDatabase, watcher: RevisionWatcher
) -> None:
    async with db.write() as tx:
        shadow = await tx.users.create("Admin")  # created before the YAML declared the name
        await tx.access_keys.create(shadow.id, SECRET, access_key_id="AKIAIOSFODNN7EXAMPLE")
    snapshot = (await CatalogFeed(CONFIG, db).start(watcher)).snapshot
    admin = snapshot.user_named("admin")
    # Names are case-insensitive: "Admin" is the config user, the database's shadowed one is left out.
    assert admin is not None and admin.source == "config" and snapshot.user_named("Admin") is admin
    assert snapshot.access_key("AKIAIOSFODNN7EXAMPLE") is None  # the shadowed user's key is not admin's


async def test_a_document_that_does_not_compile_fails_closed_and_the_rest_propagates(
    db: IamDatabase, watcher: RevisionWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = await CatalogFeed(CONFIG, db).start(watcher)
    async with db.write() as tx:  # written behind the API's back: the API validates documents
        dev = await tx.users.create("dev")
        await tx.inline_policies.put("user", dev.id, "bad", json.dumps({"Statement": [{"Effect": "Maybe"}]}))
        await tx.inline_policies.put("user", dev.id, "junk", "not json")
        await tx.inline_policies.put("user", dev.id, "good", json.dumps(READ))
        key = await tx.access_keys.create(dev.id, SECRET)
    with caplog.at_level(logging.WARNING, logger="gateway.iam"):
        await watcher.check()
    user = catalog.snapshot.user_named("dev")
    assert user is not None and [p.name for p in user.inline] == ["good"]
    assert any("does not compile" in r.getMessage() for r in caplog.records)
    assert any("not a JSON object" in r.getMessage() for r in caplog.records)
    async with db.write() as tx:  # later changes still reach the catalog
        await tx.access_keys.set_status(key.id, "Inactive")
    await watcher.check()
    found = catalog.snapshot.access_key(key.id)
    assert found is not None and found.status == "Inactive"


async def test_a_failed_rebuild_keeps_the_snapshot_and_says_why(
    db: IamDatabase, watcher: RevisionWatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.db.watch")
    catalog = await CatalogFeed(CONFIG, db).start(watcher)
    before = catalog.snapshot
    engine = create_async_engine(db.target.url)  # break the database under the replica
    try:
        async with engine.begin() as conn:
            await conn.execute(text("DROP TABLE iam_policy_attachments"))
    finally:
        await engine.dispose()
    async with db.write() as tx:
        await tx.users.create("dev")
    await watcher.check()
    assert catalog.snapshot is before and before.user_named("dev") is None
    assert any("catalog" in r.getMessage() for r in caplog.records)
