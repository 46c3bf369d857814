"""The database as a running gateway holds it: the database, its watcher, the revocation state.

:func:`start_database` is what the application's start-up calls (and the benchmarks and tests that
play replicas): open the database, migrate or check its schema, seal secrets again under the active
key, load the revocation state and start watching for changes. Until that first load the state is
not current, so a replica never serves signed requests on revocations it has not read.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import final

from gateway.config import DatabaseSettings
from gateway.credentials.keyring import KeyRing
from gateway.credentials.revocation import Revocations
from gateway.db.database import IamDatabase
from gateway.db.feed import RevocationFeed
from gateway.db.usage import KeyUsageRecorder
from gateway.db.watch import RevisionWatcher

__all__ = ["DatabaseRuntime", "start_database"]

log = logging.getLogger(__name__)


@final
@dataclass(frozen=True, slots=True)
class DatabaseRuntime:
    """A started database with everything that keeps this replica in step with it."""

    database: IamDatabase
    watcher: RevisionWatcher
    revocations: Revocations
    key_usage: KeyUsageRecorder

    async def close(self) -> None:
        """Stop watching, write pending key uses, close connections."""
        await self.watcher.close()
        await self.key_usage.close()
        await self.database.close()


async def start_database(
    settings: DatabaseSettings,
    *,
    account_id: str,
    keyring: KeyRing,
    reseal: bool = True,
    instrument: Callable[[IamDatabase], None] | None = None,
) -> DatabaseRuntime:
    """Open, prepare and start following the database ``settings`` name.

    Raises :class:`~gateway.errors.ConfigError` (bad URL), :class:`~gateway.errors.DatabaseError`
    (schema) or :class:`~gateway.errors.DatabaseUnavailable` (cannot connect); on any of them
    nothing is left open. ``reseal`` is off for a key ring made up for this process alone, whose
    key would be lost with it. ``instrument`` is handed the database before its first statement
    (the metrics listen to its engine's events).
    """
    database = IamDatabase.from_settings(settings, account_id=account_id, keyring=keyring)
    if instrument is not None:
        instrument(database)
    try:
        await database.start()
        if reseal:
            resealed = await database.reseal()
            if resealed:
                log.info("secrets sealed again under the active key", extra={"count": resealed})
        revocations = Revocations(database, max_staleness=settings.max_staleness_seconds)
        watcher = RevisionWatcher(
            database,
            poll_interval=settings.poll_interval_seconds,
            listen=settings.listen,
            timeout=settings.statement_timeout_seconds,
        )
        RevocationFeed(database, revocations).subscribe_to(watcher)
        await watcher.start()
    except BaseException:
        await database.close()
        raise
    key_usage = KeyUsageRecorder(database)
    key_usage.start()
    return DatabaseRuntime(database=database, watcher=watcher, revocations=revocations, key_usage=key_usage)
