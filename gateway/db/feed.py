"""Feeding this replica's in-memory :class:`~gateway.credentials.Revocations` from the database.

Subscribed to the :class:`~gateway.db.watch.RevisionWatcher`: when the revision moves it reads the
cutoffs raised since the revision it knows (one consistent read) and merges them (merging never
lowers a cutoff); after every check that found it current it confirms the state, which keeps signed
requests accepted. If the database's revision is lower than the one known (a restored or replaced
database), everything is read again and merged, so no cutoff this replica knew is lost.
"""

from __future__ import annotations

from typing import final

from gateway.credentials.revocation import Revocations
from gateway.db.database import IamDatabase
from gateway.db.watch import RevisionWatcher

__all__ = ["RevocationFeed"]


@final
class RevocationFeed:
    """Keeps ``revocations`` equal to (or ahead of) the database's revocation table."""

    def __init__(self, db: IamDatabase, revocations: Revocations) -> None:
        self._db = db
        self._revocations = revocations
        self._known = 0

    def __repr__(self) -> str:
        return f"RevocationFeed(revision={self._known})"

    def subscribe_to(self, watcher: RevisionWatcher) -> None:
        """Follow ``watcher``."""
        watcher.subscribe("revocations", self.refresh, confirmed=self._revocations.confirm)

    async def refresh(self, revision: int) -> None:
        """Merge every cutoff raised since the revision known."""
        entries, seen = await self._db.revocations_since(self._known)
        if seen < self._known:
            entries, seen = await self._db.revocations_since(0)
        self._revocations.merge((e.kind, e.scope, e.cutoff) for e in entries)
        self._known = seen
