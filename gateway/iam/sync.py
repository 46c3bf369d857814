"""Keeping this replica's catalog equal to the YAML plus the IAM database.

:class:`CatalogFeed` is subscribed to the database's
:class:`~gateway.db.watch.RevisionWatcher`: when the revision moves it reads every entity in one
consistent read (:meth:`IamDatabase.load <gateway.db.IamDatabase.load>`), merges them with the
configuration's records by the collision rule (:mod:`gateway.iam.records`), compiles a new
snapshot off the event loop and swaps it in. A rebuild that fails (the database is unreachable, a
stored document does not compile) leaves the current snapshot in place, is logged by the watcher
with the reason, and is tried again on the next check. Requests never wait for any of this: they
read whichever snapshot is current.
"""

from __future__ import annotations

import asyncio
import logging
from typing import final

from gateway.db.database import IamDatabase
from gateway.db.watch import RevisionWatcher
from gateway.iam.catalog import Catalog, CatalogSnapshot, build_snapshot
from gateway.iam.records import CatalogRecords, merge_records, records_from_database

__all__ = ["CatalogFeed"]

log = logging.getLogger(__name__)


@final
class CatalogFeed:
    """Builds snapshots from ``config`` (the YAML's records) and ``db``; swaps them into a catalog."""

    def __init__(self, config: CatalogRecords, db: IamDatabase) -> None:
        self._config = config
        self._db = db
        self._catalog: Catalog | None = None

    def __repr__(self) -> str:
        revision = self._catalog.snapshot.revision if self._catalog is not None else None
        return f"CatalogFeed(revision={revision})"

    async def build(self, config: CatalogRecords | None = None) -> CatalogSnapshot:
        """A snapshot of the configuration (``config``, else the one in force) and the database as
        it is now."""
        config = config if config is not None else self._config
        stored = await self._db.load()
        records = merge_records(config, records_from_database(stored, config.account_id))
        # Compiling every policy is CPU work: off the loop, so requests keep being served meanwhile.
        return await asyncio.to_thread(build_snapshot, records)

    async def start(self, watcher: RevisionWatcher) -> Catalog:
        """Build the first snapshot (raising what stops it: a replica does not start without its
        catalog) and follow ``watcher`` from its revision on."""
        first = await self.build()
        self._catalog = Catalog(first)
        watcher.subscribe("catalog", self.refresh, revision=first.revision)
        return self._catalog

    def reconfigure(self, config: CatalogRecords, snapshot: CatalogSnapshot) -> None:
        """Take ``config`` as the YAML's records from now on, with ``snapshot`` (built from it by
        :meth:`build`) in force (a configuration reload)."""
        catalog = self._catalog
        if catalog is None:
            raise RuntimeError("CatalogFeed.start first")
        self._config = config
        catalog.swap(snapshot, rewind=snapshot.revision < catalog.snapshot.revision)

    async def refresh(self, revision: int) -> None:
        """Rebuild and swap (the watcher calls this when the revision moves)."""
        catalog = self._catalog
        if catalog is None:
            raise RuntimeError("CatalogFeed.start first")
        snapshot = await self.build()
        rewind = snapshot.revision < catalog.snapshot.revision
        if rewind:
            log.warning(
                "the IAM database went back to an earlier revision; the catalog follows it",
                extra={"known": catalog.snapshot.revision, "now": snapshot.revision},
            )
        catalog.swap(snapshot, rewind=rewind)
        log.debug("catalog at revision %d", snapshot.revision)
