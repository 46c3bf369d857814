"""Migrations: they build exactly the tables the queries are written against, on both backends;
start-up migrates, or refuses a schema that is not current; migrating is idempotent and shared."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.db.migrate import MIGRATIONS, VERSION_TABLE, head_revision
from gateway.db.schema import metadata
from gateway.errors import DatabaseError
from tests.db.conftest import open_database


@pytest.fixture()
def blank_url(fresh_database_url: str) -> str:
    """A database never migrated (a new one per test: these tests migrate it themselves)."""
    return fresh_database_url


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection,
        opts={"version_table": VERSION_TABLE, "compare_type": True, "compare_server_default": True},
    )
    return list(compare_metadata(context, metadata))


async def test_migrating_an_empty_database_yields_exactly_the_schema(blank_url: str) -> None:
    db = open_database(blank_url, None)
    try:
        assert await db.schema_revisions() == (None, head_revision())
        await db.start()
        assert await db.schema_revisions() == (head_revision(), head_revision())
        assert await db.revision() == 0
    finally:
        await db.close()
    engine = create_async_engine(db.target.url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()


async def test_start_up_refuses_an_unmigrated_schema_when_told_not_to_migrate(blank_url: str) -> None:
    db = open_database(blank_url, None, migrate_on_start=False)
    try:
        with pytest.raises(DatabaseError, match=r"nothing \(an empty database\).*fedgate db upgrade"):
            await db.start()
        assert (await db.schema_revisions())[0] is None  # and touched nothing
        before, after = await db.upgrade()
        assert (before, after) == (None, head_revision())
        assert await db.upgrade() == (head_revision(), head_revision())
        await db.start()  # current now: starts without migrating
    finally:
        await db.close()


async def test_replicas_starting_together_migrate_once(blank_url: str) -> None:
    replicas = [open_database(blank_url, None) for _ in range(5)]
    try:
        await asyncio.gather(*(r.start() for r in replicas))
        assert {await r.schema_revisions() for r in replicas} == {(head_revision(), head_revision())}
        async with replicas[0].write() as tx:
            await tx.users.create("alice")
        assert [u.name for u in (await replicas[2].load()).users] == ["alice"]
    finally:
        for r in replicas:
            await r.close()


async def test_a_schema_newer_than_this_fedgate_is_refused(blank_url: str) -> None:
    db = open_database(blank_url, None)
    try:
        await db.start()
        engine = create_async_engine(db.target.url)
        async with engine.begin() as conn:
            await conn.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '9999'"))
        await engine.dispose()
        with pytest.raises(DatabaseError, match="revision 9999, newer than this fedgate"):
            await db.start()
    finally:
        await db.close()


def test_the_migration_scripts_are_package_data() -> None:
    """An installed wheel must carry the scripts: they sit inside the package, listed as data."""
    assert (MIGRATIONS / "env.py").is_file() and (MIGRATIONS / "script.py.mako").is_file()
    assert any(p.name.startswith("0001_") for p in (MIGRATIONS / "versions").glob("*.py"))
    pyproject = (Path(__file__).parents[2] / "pyproject.toml").read_text()
    assert '"db/migrations/script.py.mako"' in pyproject
