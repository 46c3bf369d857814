"""Versioned schema migrations: Alembic, run on a connection fedgate holds.

The scripts live in ``gateway/db/migrations`` (package data, so an installed wheel runs them). They
are applied at start-up (``database.migrate_on_start``) or by ``fedgate db upgrade``, inside one
transaction that first takes a lock every other migrator waits for: PostgreSQL's transaction-scoped
advisory lock, SQLite's ``BEGIN IMMEDIATE``. So replicas starting together migrate once, and a
failed migration leaves the schema as it was.

Alembic (with Mako, and the DDL of every dialect it knows: about 10 MiB of a server's memory) is
imported only to migrate, or to list the scripts' revisions. A start-up that finds the schema
current reads the version table itself (:func:`current_revision`) and compares it with
:data:`HEAD`, the revision :mod:`gateway.db.schema` describes (a test checks that it is the
scripts' head). An empty SQLite database (a new file, or one in memory) is built straight from
those table definitions (:func:`create_head_schema`, Alembic's "create_all, then stamp the head"),
which a test proves identical, statement for statement, to what migrating it yields; PostgreSQL,
shared by replicas, is always migrated by Alembic under its advisory lock.

The functions here are synchronous, for ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, Connection, MetaData, PrimaryKeyConstraint, String, Table, select, text

from gateway.db import schema
from gateway.errors import DatabaseError
from gateway.requires import require

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "HEAD",
    "MIGRATIONS",
    "VERSION_TABLE",
    "create_head_schema",
    "create_or_upgrade",
    "current_revision",
    "head_revision",
    "known_revisions",
    "scripts_head",
    "upgrade",
]

#: The table recording the schema revision (named for fedgate, so it can share a database).
VERSION_TABLE = "fedgate_schema_version"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant serves; it only has to be the same in every fedgate process.
_ADVISORY_LOCK = 0x0FED6A7E
#: The newest schema revision this fedgate knows: the one :mod:`gateway.db.schema` describes.
HEAD = schema.HEAD

# Alembic's version table exactly as Alembic creates it (so Alembic reads and moves it later).
_VERSIONS = Table(
    VERSION_TABLE,
    MetaData(),
    Column("version_num", String(32), nullable=False),
    PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
)


def _config(connection: Connection | None) -> Config:
    require("alembic", feature="database: migrating the schema", package="alembic")
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this fedgate knows (:data:`HEAD`)."""
    return HEAD


def scripts_head() -> str:
    """The head revision of the packaged migration scripts, as Alembic reads them."""
    config = _config(None)
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None, "no migration scripts packaged"
    return head


def known_revisions() -> frozenset[str]:
    """Every schema revision this fedgate's scripts define."""
    config = _config(None)
    from alembic.script import ScriptDirectory

    return frozenset(s.revision for s in ScriptDirectory.from_config(config).walk_revisions())


def current_revision(connection: Connection) -> str | None:
    """The schema revision the database is at (``None``: never migrated).

    Read as Alembic reads it: no version table, or an empty one, is no revision; more than one row
    (branches, which fedgate's linear history never makes) is refused.
    """
    if not connection.dialect.has_table(connection, VERSION_TABLE):
        return None
    rows = connection.execute(select(_VERSIONS.c.version_num)).scalars().all()
    if len(rows) > 1:
        raise DatabaseError(f"the database schema has several heads ({', '.join(sorted(rows))})")
    return rows[0] if rows else None


def create_head_schema(connection: Connection) -> None:
    """Build the :data:`HEAD` schema on an empty database, without Alembic, in the caller's transaction.

    For SQLite, in the caller's ``BEGIN IMMEDIATE`` transaction (the migrators' lock). What it
    builds is what migrating yields: every table of :mod:`gateway.db.schema`, the revision row, and
    the version table at :data:`HEAD`.
    """
    schema.metadata.create_all(connection)
    connection.execute(schema.revision.insert().values(id=1, revision=0))
    _VERSIONS.create(connection)
    connection.execute(_VERSIONS.insert().values(version_num=HEAD))


def create_or_upgrade(connection: Connection) -> tuple[str | None, str]:
    """:func:`create_head_schema` on a database holding none of fedgate's tables, else
    :func:`upgrade`; (before, after)."""
    before = current_revision(connection)
    has_table = connection.dialect.has_table
    if before is None and not any(has_table(connection, name) for name in schema.metadata.tables):
        create_head_schema(connection)
        return None, HEAD
    if before == HEAD:  # another process built or migrated it while this one waited for the lock
        return HEAD, HEAD
    return upgrade(connection)


def upgrade(connection: Connection) -> tuple[str | None, str]:
    """Bring the schema to the head revision, in the connection's transaction; return (before, after).

    The caller began the transaction (on SQLite with ``BEGIN IMMEDIATE``) and commits it.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    before = current_revision(connection)
    config = _config(connection)
    from alembic import command

    command.upgrade(config, "head")
    after = current_revision(connection)
    assert after is not None, "migrating left no revision"
    return before, after
