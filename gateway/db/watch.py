"""Learning that the database changed: a revision watcher with subscribers.

Every write transaction bumps the database's revision. A :class:`RevisionWatcher` reads it every
``poll_interval`` (the safety net, and the only signal on SQLite), at once when PostgreSQL notifies
a commit (:mod:`gateway.db.listen`), and at once after a write this process committed. When the
revision differs from what a subscriber has, the subscriber's ``refresh(revision)`` brings it up to
date (the revocation feed reads the cutoffs raised since; the catalog reloads its snapshot). After
each successful check, every subscriber that is up to date is told the moment of that check
(``confirmed(at)``): the replica knew all there was as of then. A subscriber that fails stays
unconfirmed, so whoever relies on its freshness (the revocation check) can fail closed.

A database that goes away is logged once when it does and once when it comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, final

from gateway.db.database import IamDatabase, unavailable_reason
from gateway.errors import DatabaseUnavailable

if TYPE_CHECKING:  # asyncpg is imported on PostgreSQL only
    from gateway.db.listen import NotificationListener

__all__ = ["RevisionWatcher", "Subscription"]

log = logging.getLogger(__name__)

Refresh = Callable[[int], Awaitable[None]]
Confirmed = Callable[[float], None]


@final
class Subscription:
    """One subscriber: what it does on a change, and the revision it was last brought to."""

    __slots__ = ("confirmed", "failing", "name", "refresh", "revision")

    def __init__(self, name: str, refresh: Refresh, confirmed: Confirmed | None) -> None:
        self.name = name
        self.refresh = refresh
        self.confirmed = confirmed
        self.revision: int | None = None
        self.failing = False

    def __repr__(self) -> str:
        return f"Subscription({self.name!r}, revision={self.revision})"


@final
class RevisionWatcher:
    """Polls (and listens for) the database's revision and brings subscribers up to date.

    Args:
        db: the database to watch.
        poll_interval: seconds between revision checks.
        listen: on PostgreSQL, also check at once on each commit notification.
        timeout: the longest one check (or one subscriber's refresh) may take.
    """

    def __init__(
        self,
        db: IamDatabase,
        *,
        poll_interval: float,
        listen: bool = True,
        timeout: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._db = db
        self._interval = poll_interval
        self._timeout = timeout
        self._monotonic = monotonic
        self._subscriptions: list[Subscription] = []
        self._wake = asyncio.Event()
        self._checking = asyncio.Lock()
        self._tasks: list[asyncio.Task[None]] = []
        self._down_since: float | None = None
        self._revision: int | None = None
        self._checked_at: float | None = None
        self._listener: NotificationListener | None = None
        if listen and db.target.backend == "postgresql":
            from gateway.db.listen import NotificationListener

            self._listener = NotificationListener(
                db.listen_dsn(), on_notify=self.poke, connect_timeout=db.settings.connect_timeout_seconds
            )
        db.add_commit_hook(lambda revision: self.poke())

    def __repr__(self) -> str:
        listening = self._listener is not None
        return f"RevisionWatcher({self._db!r}, revision={self._revision}, listening={listening})"

    @property
    def revision(self) -> int | None:
        """The revision last read (``None`` before the first successful check)."""
        return self._revision

    @property
    def checked_at(self) -> float | None:
        """When (monotonic seconds) the revision was last read and every subscriber brought up to
        it; ``None`` before. How late a change elsewhere can be seen here is ``now - checked_at``."""
        return self._checked_at

    @property
    def listening(self) -> bool:
        """Whether a notification connection is up right now."""
        return self._listener is not None and self._listener.connected

    def subscribe(
        self,
        name: str,
        refresh: Refresh,
        *,
        confirmed: Confirmed | None = None,
        revision: int | None = None,
    ) -> Subscription:
        """Call ``refresh(revision)`` when the revision moves, ``confirmed(at)`` after each check
        that found this subscriber up to date. Subscribe before :meth:`start`, or give the
        ``revision`` the subscriber already loaded (it is refreshed at the next check if the
        database has moved on since)."""
        subscription = Subscription(name, refresh, confirmed)
        subscription.revision = revision
        self._subscriptions.append(subscription)
        return subscription

    def poke(self) -> None:
        """Check as soon as possible (a notification arrived, or this process committed)."""
        self._wake.set()

    async def start(self) -> None:
        """Bring every subscriber up to date once, then watch in the background.

        Raises :class:`~gateway.errors.DatabaseUnavailable` if that first check cannot be made, or
        what a subscriber's first refresh raised: a replica does not start without its state.
        """
        await self._check(raise_errors=True)
        self._tasks.append(asyncio.create_task(self._poll_loop(), name="fedgate-db-watch"))
        if self._listener is not None:
            self._tasks.append(asyncio.create_task(self._listener.run(), name="fedgate-db-listen"))

    async def close(self) -> None:
        """Stop watching."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def check(self) -> bool:
        """Read the revision and bring subscribers up to date now; ``False`` if the database did not
        answer."""
        return await self._check(raise_errors=False)

    async def _poll_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            try:
                await self.check()
            except Exception:  # the loop must outlive a bug: without it nothing recovers
                log.exception("revision check failed")

    async def _check(self, *, raise_errors: bool) -> bool:
        async with self._checking:
            started = self._monotonic()
            try:
                async with asyncio.timeout(self._timeout):
                    revision = await self._db.revision()
            except (DatabaseUnavailable, TimeoutError) as exc:
                if raise_errors:
                    raise
                self._went_down(exc, started)
                return False
            self._came_back(started)
            if self._revision is not None and revision < self._revision:
                log.warning(
                    "the database's revision went backwards (restored or replaced?); reloading",
                    extra={"known": self._revision, "now": revision},
                )
            self._revision = revision
            for subscription in self._subscriptions:
                if subscription.revision != revision:
                    try:
                        async with asyncio.timeout(self._timeout):
                            await subscription.refresh(revision)
                    except Exception as exc:  # one failing subscriber must not starve the others
                        if raise_errors:
                            raise
                        self._subscriber_failed(subscription, exc)
                        continue
                    subscription.revision = revision
                if subscription.failing:
                    subscription.failing = False
                    log.warning("database subscriber %s is current again", subscription.name)
                if subscription.confirmed is not None:
                    subscription.confirmed(started)
            self._checked_at = started
            return True

    def _went_down(self, exc: BaseException, at: float) -> None:
        if self._down_since is None:
            self._down_since = at
            log.warning(
                "IAM database unreachable: %s",
                "timed out" if isinstance(exc, TimeoutError) else unavailable_reason(exc),
            )

    def _came_back(self, at: float) -> None:
        if self._down_since is not None:
            log.warning("IAM database reachable again after %.1f s", at - self._down_since)
            self._down_since = None

    @staticmethod
    def _subscriber_failed(subscription: Subscription, exc: BaseException) -> None:
        if subscription.failing:
            return
        subscription.failing = True
        if isinstance(exc, DatabaseUnavailable | TimeoutError):
            log.warning(
                "database subscriber %s could not refresh: %s", subscription.name, unavailable_reason(exc)
            )
        else:
            log.error("database subscriber %s failed", subscription.name, exc_info=exc)
