"""From ``database:`` settings to an asyncio SQLAlchemy engine: SQLite (aiosqlite) or PostgreSQL
(asyncpg).

SQLite is driven the way serialized writes need it: the driver's own transaction handling is off
and fedgate emits ``BEGIN`` itself, ``BEGIN IMMEDIATE`` for a write transaction (so the write lock
is taken before the first read and quota checks cannot race), with foreign keys on and a busy
timeout; :meth:`IamDatabase.start` puts the file in WAL mode, so readers run beside the writer. An
in-memory database lives in one connection shared by the whole engine (the database owner
serializes every use of it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import URL, event, make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool

from gateway.config import DatabaseSettings
from gateway.errors import ConfigError
from gateway.requires import require

__all__ = ["CHANNEL", "WRITE_OPTION", "Backend", "DatabaseTarget", "create_engine", "target_for"]

Backend = Literal["sqlite", "postgresql"]

#: Execution option marking a connection whose transaction writes (SQLite: ``BEGIN IMMEDIATE``).
WRITE_OPTION = "fedgate_write"
#: The PostgreSQL channel every commit notifies, with the new revision as payload
#: (:mod:`gateway.db.listen`).
CHANNEL = "fedgate_iam"

_SQLITE_DRIVERS = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+asyncpg"}


@dataclass(frozen=True, slots=True)
class DatabaseTarget:
    """Where the database is: the driver URL, its backend, and whether it lives in memory."""

    url: URL
    backend: Backend
    in_memory: bool

    def __repr__(self) -> str:
        return f"DatabaseTarget({self.redacted()!r})"

    def redacted(self) -> str:
        """The URL without its password, for messages."""
        return self.url.render_as_string(hide_password=True)

    @property
    def sqlite_path(self) -> Path | None:
        """The SQLite file, or ``None`` (PostgreSQL, or in memory)."""
        if self.backend != "sqlite" or self.in_memory or self.url.database is None:
            return None
        return Path(self.url.database)


def target_for(settings: DatabaseSettings) -> DatabaseTarget:
    """Resolve and check ``settings.url``.

    Raises :class:`~gateway.errors.ConfigError` naming ``database.url`` (never echoing the URL,
    which may hold a password) when it cannot be read, parsed, or names another kind of database.
    """
    try:
        raw = settings.resolved_url()
    except ValueError as exc:
        raise ConfigError(f"database.url: {exc}") from None
    if raw is None:
        return DatabaseTarget(make_url("sqlite+aiosqlite://"), "sqlite", in_memory=True)
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(
            "database.url: not a database URL (use sqlite:///PATH or postgresql://USER@HOST:PORT/DB)"
        ) from None
    if url.drivername in _SQLITE_DRIVERS:
        if url.query or url.host or url.username or url.port:
            raise ConfigError("database.url: a SQLite URL is sqlite:///PATH, with no host or options")
        if url.database in (None, "", ":memory:"):
            return DatabaseTarget(make_url("sqlite+aiosqlite://"), "sqlite", in_memory=True)
        path = Path(url.database).expanduser().absolute()
        return DatabaseTarget(url.set(drivername="sqlite+aiosqlite", database=str(path)), "sqlite", False)
    if url.drivername in _POSTGRES_DRIVERS:
        if not url.database:
            raise ConfigError("database.url: name the PostgreSQL database (postgresql://USER@HOST:PORT/DB)")
        return DatabaseTarget(url.set(drivername="postgresql+asyncpg"), "postgresql", in_memory=False)
    raise ConfigError(
        f"database.url: unsupported database {url.get_backend_name()!r}; use sqlite:///PATH or "
        "postgresql://USER@HOST:PORT/DB"
    )


def create_engine(target: DatabaseTarget, settings: DatabaseSettings) -> AsyncEngine:
    """The engine for ``target``; connections are made on first use.

    Only the driver ``target`` names is imported (asyncpg for PostgreSQL, aiosqlite for SQLite); a
    missing one is a :class:`~gateway.errors.ConfigError`.
    """
    if target.backend == "postgresql":
        require("asyncpg", feature="database.url: postgresql", package="asyncpg")
        return create_async_engine(
            target.url,
            pool_size=settings.pool_size,
            max_overflow=settings.max_overflow,
            pool_timeout=settings.connect_timeout_seconds,
            # A connection the network cut is found and replaced on checkout, not on first use.
            pool_pre_ping=True,
            connect_args={
                "timeout": settings.connect_timeout_seconds,
                "command_timeout": settings.statement_timeout_seconds,
                "server_settings": {"application_name": "fedgate"},
            },
        )
    require("aiosqlite", feature="database.url: sqlite", package="aiosqlite")
    path = target.sqlite_path
    if path is not None:
        # The directory may not exist yet on a fresh clone (the demo's .fedgate/). Both stay private:
        # SQLite gives its -wal and -shm files the database file's mode.
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            path.touch(mode=0o600, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"database.url: cannot create {path}: {exc.strerror}") from None
    options: dict[str, Any] = {"connect_args": {"timeout": settings.statement_timeout_seconds}}
    if target.in_memory:
        options["poolclass"] = StaticPool
    engine = create_async_engine(target.url, **options)
    busy_ms = int(settings.statement_timeout_seconds * 1000)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        # Per-connection settings only (none takes a lock); WAL is set once, at start-up.
        for pragma in (
            "PRAGMA foreign_keys = ON",
            "PRAGMA synchronous = FULL",  # a committed revocation survives a power cut
            f"PRAGMA busy_timeout = {busy_ms}",
        ):
            cursor.execute(pragma)
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
