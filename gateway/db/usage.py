"""Recording when access keys were last used, off the hot path.

Verifying a request signed with a long-term key calls :meth:`KeyUsageRecorder.note`, which only
remembers the latest use per key in memory; a background task writes them to the database every
few seconds in one transaction that bumps no revision. A key's last use is therefore up to one
flush interval late, and a crash loses at most that much of it (AWS itself reports it within hours).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import final

from gateway.db.database import IamDatabase, unavailable_reason
from gateway.db.records import AccessKeyUse
from gateway.errors import DatabaseUnavailable

__all__ = ["KeyUsageRecorder"]

log = logging.getLogger(__name__)

_MAX_PENDING = 10_000


@final
class KeyUsageRecorder:
    """Remembers each access key's latest use and writes them out periodically."""

    def __init__(self, db: IamDatabase, *, interval: float = 5.0) -> None:
        self._db = db
        self._interval = interval
        self._pending: dict[str, AccessKeyUse] = {}
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def __repr__(self) -> str:
        return f"KeyUsageRecorder(pending={len(self._pending)})"

    def note(self, access_key_id: str, *, service: str, region: str, at: datetime | None = None) -> None:
        """Remember a use (no I/O). Past a bound on distinct keys, further new keys wait a flush."""
        if access_key_id not in self._pending and len(self._pending) >= _MAX_PENDING:
            return
        self._pending[access_key_id] = AccessKeyUse(access_key_id, at or datetime.now(UTC), service, region)

    def start(self) -> None:
        """Flush in the background every ``interval`` seconds."""
        self._task = asyncio.create_task(self._run(), name="fedgate-key-usage")

    async def flush(self) -> None:
        """Write what is pending now; on failure it is kept for the next flush."""
        if not self._pending:
            return
        batch, self._pending = self._pending, {}
        try:
            await self._db.record_key_uses(batch.values())
        except DatabaseUnavailable as exc:
            for key, use in batch.items():  # newer uses noted meanwhile win
                self._pending.setdefault(key, use)
            if not self._failing:
                log.warning("access-key last-use not recorded yet: %s", unavailable_reason(exc))
            self._failing = True
            return
        self._failing = False

    async def close(self) -> None:
        """Stop the background task and write what is pending (once, bounded by the database's
        timeouts)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            try:
                await self.flush()
            except Exception:  # keep recording after an unexpected error
                log.exception("recording access-key use failed")
