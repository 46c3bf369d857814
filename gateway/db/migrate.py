"""Versioned schema migrations: Alembic, run on a connection fedgate holds.

The scripts live in ``gateway/db/migrations`` (package data, so an installed wheel runs them). They
are applied at start-up (``database.migrate_on_start``) or by ``fedgate db upgrade``, inside one
transaction that first takes a lock every other migrator waits for: PostgreSQL's transaction-scoped
advisory lock, SQLite's ``BEGIN IMMEDIATE``. So replicas starting together migrate once, and a
failed migration leaves the schema as it was.

The functions here are synchronous, for ``AsyncConnection.run_sync``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

__all__ = [
    "MIGRATIONS",
    "VERSION_TABLE",
    "current_revision",
    "head_revision",
    "known_revisions",
    "upgrade",
]

#: The table recording the schema revision (named for fedgate, so it can share a database).
VERSION_TABLE = "fedgate_schema_version"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any constant serves; it only has to be the same in every fedgate process.
_ADVISORY_LOCK = 0x0FED6A7E


def _config(connection: Connection | None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest schema revision this fedgate knows."""
    head = ScriptDirectory.from_config(_config(None)).get_current_head()
    assert head is not None, "no migration scripts packaged"
    return head


def known_revisions() -> frozenset[str]:
    """Every schema revision this fedgate's scripts define."""
    return frozenset(s.revision for s in ScriptDirectory.from_config(_config(None)).walk_revisions())


def current_revision(connection: Connection) -> str | None:
    """The schema revision the database is at (``None``: never migrated)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: Connection) -> tuple[str | None, str]:
    """Bring the schema to the head revision, in the connection's transaction; return (before, after).

    The caller began the transaction (on SQLite with ``BEGIN IMMEDIATE``) and commits it.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
    before = current_revision(connection)
    command.upgrade(_config(connection), "head")
    return before, head_revision()
