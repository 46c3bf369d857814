"""PostgreSQL commit notifications: one dedicated asyncpg connection that ``LISTEN``\\ s.

Each write transaction sends ``NOTIFY fedgate_iam, '<revision>'``, delivered to every listener when
it commits. The listener only wakes the :class:`~gateway.db.watch.RevisionWatcher` (which then
reads the revision itself), so a lost or duplicated notification costs nothing but latency. The
connection is checked with a trivial query every few seconds, so one the network dropped silently
is replaced; while it is down the watcher's polling still bounds how stale a replica gets, and a
reconnect wakes the watcher (changes may have been missed meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any, final

import asyncpg

from gateway.db.engine import CHANNEL

__all__ = ["CHANNEL", "NotificationListener"]

log = logging.getLogger(__name__)

_CHECK_INTERVAL = 5.0
_MAX_BACKOFF = 5.0
_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


@final
class NotificationListener:
    """Keeps a ``LISTEN`` connection open and calls ``on_notify()`` for each notification."""

    def __init__(self, dsn: str, *, on_notify: Callable[[], None], connect_timeout: float) -> None:
        self._dsn = dsn
        self._on_notify = on_notify
        self._connect_timeout = connect_timeout
        self._connected = False

    def __repr__(self) -> str:
        return f"NotificationListener(connected={self._connected})"

    @property
    def connected(self) -> bool:
        """Whether the notification connection is up."""
        return self._connected

    async def run(self) -> None:
        """Listen until cancelled, reconnecting with backoff after any failure."""
        backoff = 0.1
        failing = False
        while True:
            try:
                await self._listen_once()
                backoff = 0.1
            except _ERRORS as exc:
                if not failing:
                    log.warning("database notifications unavailable (%s); polling only", type(exc).__name__)
                failing = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            failing = False

    async def _listen_once(self) -> None:
        conn: Any = await asyncpg.connect(self._dsn, timeout=self._connect_timeout)
        lost = asyncio.Event()
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            await conn.add_listener(CHANNEL, self._notified)
            self._connected = True
            self._on_notify()  # whatever committed while nobody listened
            while not lost.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), _CHECK_INTERVAL)
                    break
                await conn.fetchval("SELECT 1", timeout=self._connect_timeout)
            raise ConnectionResetError("notification connection lost")
        finally:
            self._connected = False
            conn.terminate()  # never waits on a network that may be gone

    def _notified(self, connection: object, pid: int, channel: str, payload: str) -> None:
        self._on_notify()
