"""The built-in audit sinks: JSON lines (stdout or a file), or a stream in the store.

:class:`JsonLinesSink` writes each event as it comes. :class:`StoreSink` hands events to a writer
task that appends them to the store in batches (one round trip each on Redis), and never makes a
request wait for the store:

- Events queue in memory (``queue_size``). When the store falls behind, at most half stay
  queued and the newest are *spilled* to a local JSON-lines file (:mod:`gateway.audit.spill`);
  the other half absorbs arrivals during one append attempt.
- A failed append is retried with exponential backoff (0.05 s, doubling up to
  ``retry_max_seconds``); each attempt is bounded by ``append_timeout_seconds``. While it backs
  off, only the batch to retry stays in memory: the rest is spilled as soon as it makes another
  batch, so a crash during an outage loses at most two batches.
- When appends succeed again and the queue is empty, spilled events are re-appended to the stream
  (after newer ones: stream order is then not event-time order) and the spill file is deleted.
- An event is *dropped* only when the queue is full, the spill file is full or unwritable, or it
  cannot be encoded; every one is counted (:attr:`StoreSink.stats`). Failures are logged as one
  line per 10 s at most, with counts and the cause's class name (never an event's contents or a
  traceback), and one line when the store accepts events again.
- :meth:`StoreSink.close` appends what it can within ``shutdown_timeout_seconds`` in total, spills
  the rest, and returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any, final

from gateway.audit.spill import SpillFile, SpillReader
from gateway.config import AuditSettings
from gateway.hookspecs import hookimpl
from gateway.store.base import Store

__all__ = ["AuditSinkStats", "JsonLinesSink", "StoreSink"]

log = logging.getLogger("gateway.audit")

_FIRST_RETRY = 0.05  # seconds; doubles after each failed attempt
_REPORT_EVERY = 10.0  # seconds between two log lines about spilled or dropped events
_LOCK_RETRY = 0.01  # seconds before trying again to lock a claimed spill file
_CANCEL_GRACE = 1.0  # seconds the writer gets to unwind once cancelled at shutdown
_COUNTERS = ("received", "appended", "spilled", "dropped", "replayed", "discarded", "failures")
_REPORTED = ("failures", "spilled", "dropped", "discarded")


@final
class JsonLinesSink:
    """The default audit sink: one JSON object per line on stdout or appended to a file."""

    def __init__(self, settings: AuditSettings) -> None:
        self._settings = settings
        self._stream: IO[str] | None = None
        if settings.sink == "stdout":
            self._stream = sys.stdout
        elif settings.sink == "file":
            assert settings.path is not None
            self._stream = open(settings.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - held open, closed by close()

    @hookimpl(trylast=True)
    def fedgate_audit_event(self, event: Mapping[str, Any]) -> None:
        """Write ``event`` as one line."""
        if self._stream is not None:
            self._stream.write(json.dumps(event, separators=(",", ":"), default=str) + "\n")
            self._stream.flush()

    def close(self) -> None:
        """Close the file, if one was opened."""
        if self._stream is not None and self._stream is not sys.stdout:
            self._stream.close()
        self._stream = None


@dataclass(frozen=True, slots=True)
class AuditSinkStats:
    """What became of the events a :class:`StoreSink` received, counted since it was built.

    ``received == appended + spilled + dropped + queued`` at every moment. ``replayed`` and
    ``discarded`` count lines of spill files (this process's, other workers', earlier runs'):
    re-appended to the stream, or unreadable and skipped. ``failures`` counts failed append
    attempts (each retried).
    """

    received: int
    appended: int
    spilled: int
    dropped: int
    queued: int
    replayed: int
    discarded: int
    failures: int


@final
class StoreSink:
    """The audit sink that appends events to a stream in the store (batched ``XADD`` on Redis).

    Build it, :meth:`start` it on the running loop, register it with the plugin host; at shutdown
    unregister it, then ``await`` :meth:`close`. ``clock`` (monotonic seconds) only paces the log.
    """

    def __init__(
        self, store: Store, settings: AuditSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._spill = SpillFile(settings.spill_path, settings.spill_max_bytes)
        self._queue: deque[str] = deque()
        self._hold = settings.queue_size // 2  # kept in memory while the store cannot take events
        # The hook wakes the writer to spill at this queue length: late while appends succeed,
        # early while the store is down (so a crash then loses at most two batches).
        self._wake_behind = settings.queue_size - settings.queue_size // 4
        self._wake_down = min(self._wake_behind, 2 * settings.batch_size)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._inflight: list[str] = []
        self._backoff = 0.0
        self._retry_at = 0.0
        self._reader: SpillReader | None = None
        self._spill_pending = True  # a spill file may be left from an earlier run or another worker
        self._cause = ""  # class name of the last failure, for the log
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._reported = dict.fromkeys(_REPORTED, 0)  # the counts at the last log line
        self._last_report = float("-inf")
        self._failure_logged = False

    @property
    def stats(self) -> AuditSinkStats:
        """The counters (for a metrics endpoint, and the tests)."""
        return AuditSinkStats(queued=len(self._queue) + len(self._inflight), **self._counts)

    def start(self) -> None:
        """Start the writer task (on the running loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="fedgate-audit-store")
        self._task.add_done_callback(self._writer_done)

    def _writer_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and (exc := task.exception()) is not None:
            # A defect, not a store failure (those are retried): say so once, with the traceback.
            log.error("the audit store writer stopped; events now queue until dropped", exc_info=exc)

    async def close(self) -> None:
        """Append what is queued within ``shutdown_timeout_seconds``, spill the rest, and stop."""
        if self._closed:
            return
        self._closing = True
        self._wake.set()
        task = self._task
        if task is not None:
            _, pending = await asyncio.wait({task}, timeout=self._settings.shutdown_timeout_seconds)
            if pending:
                task.cancel()
                await asyncio.wait({task}, timeout=_CANCEL_GRACE)
        self._closed = True
        # A batch whose append was cancelled may have reached the store too: spilled, it is
        # delivered at least once.
        rest = [*self._inflight, *self._queue]
        self._inflight.clear()
        self._queue.clear()
        self._spill_lines(rest)
        if self._reader is not None:
            self._reader.close()  # kept on disk; the next start claims it again
            self._reader = None
        self._report(force=True)

    @hookimpl(trylast=True)
    def fedgate_audit_event(self, event: Mapping[str, Any]) -> None:
        """Queue ``event`` for the stream; never waits, never raises."""
        self._counts["received"] += 1
        if len(self._queue) >= self._settings.queue_size:
            self._counts["dropped"] += 1
            self._wake.set()
            return
        try:
            line = json.dumps(event, separators=(",", ":"), default=str)
        except (TypeError, ValueError, RecursionError):
            self._counts["dropped"] += 1
            return
        if self._closed:
            self._spill_lines([line])  # only if called after close(): nobody would write it
            return
        self._queue.append(line)
        waiting = len(self._queue)
        if waiting == 1 or waiting >= (self._wake_down if self._backoff else self._wake_behind):
            self._wake.set()

    # -- the writer task ---------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            self._report()
            if self._closing:
                # Flush without backoff; on the first failure close() spills the rest.
                if not self._queue or not await self._deliver():
                    return
            elif (delay := self._retry_at - loop.time()) > 0:
                self._spill_excess(self._settings.batch_size)  # only the batch to retry stays
                await self._sleep(delay)
            elif self._queue:
                self._spill_excess(self._hold)  # the store is behind: the newest go to disk
                await self._deliver()
            elif not await self._replay():
                await self._sleep(self._report_due())

    async def _sleep(self, seconds: float | None) -> None:
        """Wait ``seconds`` (``None``: without limit) or until the hook or close() wakes us."""
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._wake.wait()

    async def _deliver(self) -> bool:
        """Append the next batch from the queue; on failure put it back in front."""
        count = min(self._settings.batch_size, len(self._queue))
        self._inflight = [self._queue.popleft() for _ in range(count)]
        delivered = await self._append(self._inflight)
        if delivered:
            self._counts["appended"] += count
        else:
            self._queue.extendleft(reversed(self._inflight))
        self._inflight = []
        return delivered

    async def _append(self, lines: list[str]) -> bool:
        """One attempt at appending ``lines``; a failure sets the next retry time."""
        settings = self._settings
        events = [{"event": line} for line in lines]
        # The attempt runs as its own task and is abandoned (cancelled, never awaited) when late:
        # the bound holds even where a cancellation gets lost inside the client library (redis-py
        # uses asyncio.wait_for, which on Python 3.11 can swallow one). An abandoned batch stays
        # queued and may reach the store twice: at least once, never lost.
        attempt = asyncio.ensure_future(
            self._store.append_events(settings.stream, events, maxlen=settings.max_events)
        )
        try:
            done, _ = await asyncio.wait({attempt}, timeout=settings.append_timeout_seconds)
        finally:
            if not attempt.done():
                attempt.cancel()
                attempt.add_done_callback(_ignore_outcome)
        failure = attempt.exception() if done else TimeoutError()
        if failure is not None:
            # The store chains the library's error (ConnectionError, ...): the most telling name.
            self._cause = type(failure.__cause__ or failure).__name__
            self._counts["failures"] += 1
            self._backoff = min(settings.retry_max_seconds, self._backoff * 2 or _FIRST_RETRY)
            self._retry_at = asyncio.get_running_loop().time() + self._backoff
            return False
        self._backoff = self._retry_at = 0.0
        if self._failure_logged:
            self._report(force=True)  # the last counts of the outage, then the good news
            log.info("the audit store accepts events again", extra={"cause": self._cause})
            self._failure_logged = False
        return True

    def _spill_excess(self, hold: int) -> None:
        """Keep at most ``hold`` events in memory; spill the newest beyond them."""
        excess = len(self._queue) - hold
        if excess > 0:
            newest = [self._queue.pop() for _ in range(excess)]
            newest.reverse()
            self._spill_lines(newest)

    def _spill_lines(self, lines: list[str]) -> None:
        if not lines:
            return
        try:
            written = self._spill.write(lines)
        except OSError as exc:
            self._cause, written = type(exc).__name__, 0
        self._counts["spilled"] += written
        self._counts["dropped"] += len(lines) - written
        self._spill_pending = True

    async def _replay(self) -> bool:
        """Re-append one batch from a spill file; ``False`` when there is nothing to replay."""
        if self._reader is None:
            if not self._spill_pending:
                return False
            try:
                self._reader = self._spill.claim()
            except OSError as exc:
                self._cause, self._reader = type(exc).__name__, None
            if self._reader is None:
                self._spill_pending = False
                return False
        reader = self._reader
        try:
            if not reader.lock():  # a writer that opened it before the claim is still appending
                await asyncio.sleep(_LOCK_RETRY)
                return True
            lines = reader.read(self._settings.batch_size)
        except OSError as exc:  # unreadable: keep it on disk for the operator (or the next start)
            self._cause, self._reader, self._spill_pending = type(exc).__name__, None, False
            reader.close()
            return True
        if lines and not await self._append(lines):
            reader.rewind()
            return True
        self._counts["discarded"] += reader.commit()
        self._counts["replayed"] += len(lines)
        if reader.exhausted:
            reader.remove()
            self._reader = None
        return True

    # -- the log -----------------------------------------------------------------------------

    def _report_due(self) -> float | None:
        """Seconds until the next log line may be written, or ``None`` if there is nothing to say."""
        if all(self._counts[k] == self._reported[k] for k in _REPORTED):
            return None
        return max(0.0, self._last_report + _REPORT_EVERY - self._clock())

    def _report(self, *, force: bool = False) -> None:
        """Log failures, spills and drops since the last line: at most one line per interval."""
        due = self._report_due()
        if due is None or (due > 0 and not force):
            return
        delta = {k: self._counts[k] - self._reported[k] for k in _REPORTED}
        self._reported = {k: self._counts[k] for k in _REPORTED}
        self._last_report = self._clock()
        self._failure_logged = self._failure_logged or delta["failures"] > 0
        log.log(
            logging.ERROR if delta["dropped"] or delta["discarded"] else logging.WARNING,
            "audit events did not all reach the store: %d failed appends, %d events spilled to the "
            "local file, %d dropped, %d unreadable spilled lines, since the last report",
            *delta.values(),
            extra={"cause": self._cause or None, **{f"audit_{k}_total": v for k, v in self._counts.items()}},
        )


def _ignore_outcome(attempt: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned attempt's outcome, so asyncio does not log it as never retrieved."""
    if not attempt.cancelled():
        attempt.exception()
