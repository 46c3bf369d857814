"""The IAM database: one interface over SQLite and PostgreSQL, with serialized write transactions.

::

    db = IamDatabase.from_settings(config.database, account_id="123456789012", keyring=ring)
    await db.start()                       # connect, then migrate (or check) the schema
    async with db.write() as tx:           # serialized; commits and bumps the revision, or rolls back
        user = await tx.users.create("alice")
        await tx.access_keys.create(user.id, secret)
    snapshot = await db.load()             # every entity, as frozen records, at one revision
    await db.close()

Every write transaction first locks the single revision row (``SELECT ... FOR UPDATE`` on
PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite), so writers across every replica run one at a time and a
quota check inside a transaction cannot race; if anything was written, the revision is bumped and,
on PostgreSQL, a ``NOTIFY`` carrying it goes out on commit. A transaction whose block raises is rolled
back whole. Reads run in one consistent snapshot.

Failures to reach the database raise :class:`~gateway.errors.DatabaseUnavailable` (503 to a
client), the driver's exception chained; :func:`unavailable_reason` turns it into the operator's
one line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import final

from sqlalchemy import exc as sa_exc
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from gateway.config import DatabaseSettings
from gateway.credentials.keyring import KeyRing
from gateway.db import migrate, schema
from gateway.db.engine import CHANNEL, WRITE_OPTION, DatabaseTarget, create_engine, target_for
from gateway.db.records import (
    AccessKeyRecord,
    AccessKeyUse,
    IamSnapshot,
    MfaDeviceRecord,
    RevocationRecord,
)
from gateway.db.repos.base import TxContext
from gateway.db.repos.secrets import open_access_key_secret, open_mfa_seed
from gateway.db.transaction import Transaction
from gateway.errors import DatabaseError, DatabaseUnavailable

__all__ = ["IamDatabase", "unavailable_reason"]

log = logging.getLogger(__name__)


_UNAVAILABLE = "The IAM database is unavailable; retry later."
# What "cannot reach the database" looks like from SQLAlchemy, the drivers and the network.
_CONNECTION_ERRORS = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,
    sa_exc.DisconnectionError,
    OSError,
    TimeoutError,
)


def unavailable_reason(exc: BaseException) -> str:
    """One line saying why the database could not be used: the driver's error class and message.

    Taken from the driver's own exception (SQLAlchemy's text would carry the statement and its
    parameters, sealed secrets included).
    """
    cause: BaseException | None = exc.__cause__ if isinstance(exc, DatabaseUnavailable) else exc
    if isinstance(cause, sa_exc.DBAPIError) and cause.orig is not None:
        cause = cause.orig
        # SQLAlchemy's asyncpg adapter wraps the driver's own error (InvalidCatalogNameError...).
        if cause.__cause__ is not None:
            cause = cause.__cause__
    if cause is None:
        return "unavailable"
    text = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {text}" if text else type(cause).__name__


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except DatabaseUnavailable:
        raise
    except sa_exc.DBAPIError as exc:
        if exc.connection_invalidated or isinstance(exc, _CONNECTION_ERRORS):
            raise DatabaseUnavailable(_UNAVAILABLE) from exc
        raise
    except _CONNECTION_ERRORS as exc:
        raise DatabaseUnavailable(_UNAVAILABLE) from exc


@final
class IamDatabase:
    """The durable IAM state of one account, on SQLite or PostgreSQL.

    Build it with :meth:`from_settings` (no I/O), then :meth:`start` it.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        target: DatabaseTarget,
        settings: DatabaseSettings,
        *,
        account_id: str,
        keyring: KeyRing | None,
    ) -> None:
        self._engine = engine
        self._target = target
        self._settings = settings
        self._account_id = account_id
        self._keyring = keyring
        # Writers of this process wait here rather than holding a pooled connection while they
        # wait for the revision lock; an in-memory database has one connection, so every use waits.
        self._write_gate = asyncio.Lock()
        self._commit_hooks: list[Callable[[int], None]] = []

    @classmethod
    def from_settings(
        cls, settings: DatabaseSettings, *, account_id: str, keyring: KeyRing | None = None
    ) -> IamDatabase:
        """The database ``settings`` name; raises :class:`~gateway.errors.ConfigError` for a bad URL.

        ``keyring`` seals and opens secrets at rest; without one, creating access keys or MFA
        devices raises.
        """
        target = target_for(settings)
        return cls(create_engine(target, settings), target, settings, account_id=account_id, keyring=keyring)

    def __repr__(self) -> str:
        return f"IamDatabase({self._target.redacted()!r})"

    @property
    def target(self) -> DatabaseTarget:
        """Where the database is."""
        return self._target

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy engine (for instrumentation through its events; statements go through
        :meth:`read` and :meth:`write`)."""
        return self._engine

    @property
    def settings(self) -> DatabaseSettings:
        """The ``database:`` settings it was built from."""
        return self._settings

    @property
    def account_id(self) -> str:
        """The account whose IAM entities these are."""
        return self._account_id

    def listen_dsn(self) -> str:
        """A libpq-style URL for a dedicated notification connection (PostgreSQL only)."""
        if self._target.backend != "postgresql":
            raise RuntimeError("only PostgreSQL has notifications")
        return self._target.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def add_commit_hook(self, hook: Callable[[int], None]) -> None:
        """Call ``hook(revision)`` after each write this process commits (the watcher's nudge)."""
        self._commit_hooks.append(hook)

    # Life cycle.

    async def start(self, *, migrate_schema: bool | None = None) -> None:
        """Connect and make sure the schema is current, migrating it if allowed.

        ``migrate_schema`` defaults to ``database.migrate_on_start``. Raises
        :class:`~gateway.errors.DatabaseUnavailable` when the database cannot be reached and
        :class:`~gateway.errors.DatabaseError` when the schema cannot be used.
        """
        if self._target.in_memory:
            log.warning(
                "No database configured: IAM data and session revocations live in memory and die with "
                "this process; set database.url (sqlite:///PATH or postgresql://...) to keep them."
            )
        allowed = self._settings.migrate_on_start if migrate_schema is None else migrate_schema
        if self._target.sqlite_path is not None:
            await self._use_wal()
        current, head = await self.schema_revisions()
        if current == head:
            return
        if current is not None and current not in migrate.known_revisions():
            raise DatabaseError(
                f"the database schema is at revision {current}, newer than this fedgate knows "
                f"(head {head}): run a newer fedgate"
            )
        if not allowed:
            raise DatabaseError(
                f"the database schema is at {current or 'nothing (an empty database)'}, this fedgate "
                f"needs {head}: run `fedgate db upgrade` (or set database.migrate_on_start)"
            )
        before, after = await self.upgrade()
        if before != after:
            log.info("database schema migrated", extra={"from": before or "empty", "to": after})

    async def _use_wal(self) -> None:
        """Put a SQLite file in WAL mode (readers beside the one writer), which the file keeps.

        Switching takes a lock that another process starting on the same new file may hold for a
        moment, and SQLite answers "locked" at once rather than waiting: so retry, within the
        statement timeout. It runs on the raw driver connection, outside any transaction.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._settings.statement_timeout_seconds
        while True:
            async with self._connection(write=False) as conn:
                raw = (await conn.get_raw_connection()).driver_connection
                assert raw is not None
                try:
                    cursor = await raw.execute("PRAGMA journal_mode = WAL")
                    await cursor.close()
                    return
                except sqlite3.OperationalError as exc:
                    if "locked" not in str(exc) or loop.time() > deadline:
                        raise DatabaseUnavailable(_UNAVAILABLE) from exc
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Close every connection."""
        await self._engine.dispose()

    async def schema_revisions(self) -> tuple[str | None, str]:
        """The schema revision the database is at (``None``: empty) and the one this fedgate needs."""
        async with self._connection(write=False) as conn:
            current = await conn.run_sync(migrate.current_revision)
            await conn.rollback()
        return current, migrate.head_revision()

    async def upgrade(self) -> tuple[str | None, str]:
        """Apply every pending migration in one transaction; return (revision before, after).

        An empty SQLite database (an in-memory one is always empty) is built straight at the head
        revision instead, without loading Alembic (:func:`~gateway.db.migrate.create_or_upgrade`),
        in the same ``BEGIN IMMEDIATE`` transaction, so processes starting together still build it
        once.
        """
        step = migrate.create_or_upgrade if self._target.backend == "sqlite" else migrate.upgrade
        async with self._write_gate, self._connection(write=True) as conn:
            result = await conn.run_sync(step)
            await conn.commit()
        return result

    # Transactions.

    @contextlib.asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[AsyncConnection]:
        gate = self._write_gate if self._target.in_memory and not write else contextlib.nullcontext()
        async with gate:
            try:
                conn = await self._engine.connect()
            except (sa_exc.DBAPIError, *_CONNECTION_ERRORS) as exc:
                # Whatever stops a connection (refused, no such database or role, bad password,
                # an unopenable file) makes the database unavailable, not a bug of ours.
                raise DatabaseUnavailable(_UNAVAILABLE) from exc
            try:
                with _translated():
                    if write:
                        await conn.execution_options(**{WRITE_OPTION: True})
                    elif self._target.backend == "postgresql":
                        await conn.execution_options(
                            isolation_level="REPEATABLE READ", postgresql_readonly=True
                        )
                    yield conn
            finally:
                with contextlib.suppress(*_CONNECTION_ERRORS, sa_exc.DBAPIError):
                    await conn.close()  # back to the pool (a broken one is discarded)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[Transaction]:
        """A write transaction, serialized with every other writer on every replica.

        Committed when the block ends normally (the revision bumped if anything was written);
        rolled back whole when it raises, the exception propagating. Do everything the change needs
        through ``tx``: opening another transaction inside the block waits for this one to end.
        """
        committed: int | None = None
        async with self._write_gate, self._connection(write=True) as conn:
            transaction = await conn.begin()
            try:
                r = schema.revision
                current = await conn.scalar(select(r.c.revision).where(r.c.id == 1).with_for_update())
                if current is None:
                    raise DatabaseError("the database has no revision row: was it migrated?")
                ctx = TxContext(
                    conn,
                    account_id=self._account_id,
                    revision=current + 1,
                    writable=True,
                    keyring=self._keyring,
                )
                yield Transaction(ctx)
                if ctx.dirty:
                    await conn.execute(update(r).where(r.c.id == 1).values(revision=ctx.revision))
                    if self._target.backend == "postgresql":
                        await conn.execute(select(func.pg_notify(CHANNEL, str(ctx.revision))))
                    await transaction.commit()
                    committed = ctx.revision
                else:
                    await transaction.rollback()
            except BaseException:
                with contextlib.suppress(Exception):  # a dead connection cannot roll back; it is dropped
                    await transaction.rollback()
                raise
        if committed is not None:
            for hook in self._commit_hooks:
                hook(committed)

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[Transaction]:
        """A read-only transaction seeing one consistent state (its repositories refuse to write)."""
        async with self._connection(write=False) as conn:
            await conn.begin()
            revision = await self._read_revision(conn)
            try:
                yield Transaction(
                    TxContext(
                        conn,
                        account_id=self._account_id,
                        revision=revision,
                        writable=False,
                        keyring=self._keyring,
                    )
                )
            finally:
                with contextlib.suppress(Exception):
                    await conn.rollback()

    @staticmethod
    async def _read_revision(conn: AsyncConnection) -> int:
        r = schema.revision
        value = await conn.scalar(select(r.c.revision).where(r.c.id == 1))
        if value is None:
            raise DatabaseError("the database has no revision row: was it migrated?")
        return int(value)

    # Reads for replicas.

    async def revision(self) -> int:
        """The current revision (bumped by every write transaction)."""
        async with self._connection(write=False) as conn:
            value = await self._read_revision(conn)
            await conn.rollback()
        return value

    async def load(self) -> IamSnapshot:
        """Every entity as frozen records, read at one revision (for the catalog's snapshot)."""
        async with self.read() as tx:
            return IamSnapshot(
                revision=tx.revision,
                users=tuple(await tx.users.all()),
                groups=tuple(await tx.groups.all()),
                memberships=tuple(await tx.groups.memberships()),
                roles=tuple(await tx.roles.all()),
                policies=tuple(await tx.policies.all()),
                policy_versions=tuple(await tx.policies.all_versions()),
                attachments=tuple(await tx.attachments.all()),
                inline_policies=tuple(await tx.inline_policies.all()),
                access_keys=tuple(await tx.access_keys.all()),
                oidc_providers=tuple(await tx.oidc_providers.all()),
                saml_providers=tuple(await tx.saml_providers.all()),
                instance_profiles=tuple(await tx.instance_profiles.all()),
                mfa_devices=tuple(await tx.mfa_devices.all()),
                revocations=tuple(await tx.revocations.since(0)),
            )

    async def revocations_since(self, revision: int) -> tuple[list[RevocationRecord], int]:
        """Cutoffs raised after ``revision``, and the revision they are read at (one snapshot)."""
        async with self.read() as tx:
            return await tx.revocations.since(revision), tx.revision

    async def raise_cutoff(self, kind: str, scope: str, before: float) -> float:
        """Revoke sessions of ``(kind, scope)`` issued before ``before``; return the cutoff in force.

        Committed when this returns (:class:`~gateway.credentials.RevocationWriter`).
        """
        async with self.write() as tx:
            return await tx.revocations.raise_cutoff(kind, scope, before)

    # Secrets at rest.

    def _ring(self) -> KeyRing:
        if self._keyring is None:
            raise RuntimeError("this database was opened without a key ring")
        return self._keyring

    def open_access_key_secret(self, record: AccessKeyRecord) -> str:
        """An access key's secret, unsealed (``ValueError`` when the key ring cannot open it)."""
        return open_access_key_secret(self._ring(), record)

    def open_mfa_seed(self, record: MfaDeviceRecord) -> bytes:
        """An MFA device's seed, unsealed (``ValueError`` when the key ring cannot open it)."""
        return open_mfa_seed(self._ring(), record)

    async def reseal(self) -> int:
        """Seal every secret not under the key ring's active key again under it; return how many.

        Run at start-up, so that after a rotation (new key active on every replica) the old key can
        leave the ring. Values no key opens are left alone and reported in one warning.
        """
        ring = self._ring()
        async with self.write() as tx:
            keys, lost_keys = await tx.access_keys.reseal(ring)
            seeds, lost_seeds = await tx.mfa_devices.reseal(ring)
        if lost_keys or lost_seeds:
            log.warning(
                "secrets sealed under keys no longer in the key ring cannot be opened",
                extra={"access_keys": lost_keys, "mfa_devices": lost_seeds},
            )
        return keys + seeds

    async def record_key_uses(self, uses: Iterable[AccessKeyUse]) -> None:
        """Record when, where and for what access keys were last used.

        Not an IAM change: the revision is not bumped (replicas need not reload for it) and only
        the keys' rows are locked. A use older than the one recorded changes nothing.
        """
        uses = list(uses)
        if not uses:
            return
        k = schema.access_keys
        async with self._write_gate, self._connection(write=True) as conn:
            for use in uses:
                await conn.execute(
                    update(k)
                    .where(
                        k.c.id == use.access_key_id,
                        (k.c.last_used_at.is_(None)) | (k.c.last_used_at < use.at),
                    )
                    .values(
                        last_used_at=use.at,
                        last_used_service=use.service[:64],
                        last_used_region=use.region[:32],
                    )
                )
            await conn.commit()
