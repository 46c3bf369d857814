"""Migrations: they build exactly the tables the queries are written against, on both backends;
start-up migrates, or refuses a schema that is not current; migrating is idempotent and shared.

An empty SQLite database is built from the table definitions rather than by Alembic (so a server
never loads Alembic to create it): the tests below prove the two identical, statement for
statement, and that the schema module's HEAD is the scripts' head.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from gateway.db import migrate
from gateway.db.migrate import HEAD, MIGRATIONS, VERSION_TABLE, head_revision
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


def test_the_schema_module_is_at_the_scripts_head() -> None:
    """HEAD (what a start-up compares the database with, without Alembic) is the scripts' head."""
    assert head_revision() == HEAD == migrate.scripts_head()
    assert HEAD in migrate.known_revisions()


async def _sqlite_schema(url: str) -> tuple[dict[tuple[str, str], str], list[Any]]:
    """Every schema object of a SQLite database (its normalized DDL) and its fixed rows."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT type, name, sql FROM sqlite_master"))).all()
            fixed = [
                *(await conn.execute(text("SELECT id, revision FROM iam_revision"))).all(),
                *(await conn.execute(text(f"SELECT version_num FROM {VERSION_TABLE}"))).all(),
            ]
            assert await conn.run_sync(_differences) == []
    finally:
        await engine.dispose()
    return {(kind, name): re.sub(r"\s+", " ", sql or "").strip() for kind, name, sql in rows}, fixed


async def test_an_empty_sqlite_database_is_built_exactly_as_migrating_builds_it(tmp_path: Path) -> None:
    # Alembic's way, by hand: the migration scripts on an empty file.
    migrated = f"sqlite+aiosqlite:///{tmp_path}/migrated.db"
    engine = create_async_engine(migrated)
    try:
        async with engine.begin() as conn:
            assert await conn.run_sync(migrate.upgrade) == (None, HEAD)
    finally:
        await engine.dispose()
    # The start-up's way: a new file is built from the table definitions.
    built = open_database(f"sqlite:///{tmp_path}/built.db", None)
    try:
        await built.start()
        assert await built.schema_revisions() == (HEAD, HEAD)
    finally:
        await built.close()
    expected = await _sqlite_schema(migrated)
    assert len(expected[0]) > 20 and expected[1] == [(1, 0), (HEAD,)]
    assert await _sqlite_schema(f"sqlite+aiosqlite:///{tmp_path}/built.db") == expected


async def test_an_in_memory_database_is_built_at_the_head_revision() -> None:
    db = open_database(None, None)  # type: ignore[arg-type]  # no URL: in memory
    try:
        await db.start()
        assert await db.schema_revisions() == (HEAD, HEAD)
        async with db.write() as tx:
            await tx.users.create("alice")
        assert [u.name for u in (await db.load()).users] == ["alice"]
    finally:
        await db.close()


async def test_the_revision_is_read_as_alembic_reads_it(tmp_path: Path) -> None:
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path}/iam.db")
    try:
        async with engine.begin() as conn:
            assert await conn.run_sync(migrate.current_revision) is None  # no version table
            await conn.run_sync(migrate.upgrade)

        def both(connection: Connection) -> tuple[str | None, str | None]:
            alembic = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
            return migrate.current_revision(connection), alembic.get_current_revision()

        async with engine.begin() as conn:
            assert await conn.run_sync(both) == (HEAD, HEAD)
            await conn.execute(text(f"DELETE FROM {VERSION_TABLE}"))
            assert await conn.run_sync(both) == (None, None)
            await conn.execute(text(f"INSERT INTO {VERSION_TABLE} VALUES ('0001'), ('0002')"))
            with pytest.raises(DatabaseError, match="several heads"):
                await conn.run_sync(migrate.current_revision)
    finally:
        await engine.dispose()


def test_a_start_up_on_a_current_or_new_sqlite_database_does_not_load_alembic(tmp_path: Path) -> None:
    """What a server imports stays in its memory for good: Alembic (and Mako) only to migrate."""
    script = f"""
import asyncio, sys
from gateway.config import DatabaseSettings
from gateway.db import IamDatabase
async def main():
    for url in ("sqlite:///{tmp_path}/iam.db", "sqlite:///{tmp_path}/iam.db", None):  # new, current, memory
        settings = DatabaseSettings.model_validate({{"url": url}})
        db = IamDatabase.from_settings(settings, account_id="123456789012")
        await db.start()
        await db.close()
asyncio.run(main())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("alembic", "mako", "asyncpg")))
"""
    root = Path(__file__).parents[2]
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "[]", out.stdout
