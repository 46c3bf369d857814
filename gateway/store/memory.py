"""The in-process store: the embedded default for one process with no server.

Every method runs to completion without awaiting, so on one event loop each is atomic exactly as the
Redis backend's single commands are. Expiry uses :func:`time.monotonic`, so wall-clock jumps neither
resurrect nor prematurely drop entries. Expired entries are swept as writes happen (a heap of
deadlines), and every event stream is trimmed to its ``maxlen``, so memory stays bounded by what is
live.

The store's generation begins when it is created (when the gateway process starts): a restarted
process remembers nothing its predecessor spent, and its generation says so.
"""

from __future__ import annotations

import heapq
import math
import secrets
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import final

from gateway.errors import ServiceUnavailable
from gateway.store._common import (
    check_event,
    check_events,
    check_number,
    check_ttl,
    event_id_key,
    parse_number,
)
from gateway.store.base import Generation

__all__ = ["MemoryStore"]


@final
class MemoryStore:
    """A :class:`~gateway.store.base.Store` held in this process's memory.

    ``clock`` returns monotonic seconds; it is a parameter only so that callers embedding the store
    can share a clock with the rest of their code. ``started`` is the wall-clock moment the store's
    generation began (default: now). Only tests set it, to stand for a store that has been running
    for a while: claiming an earlier start than the store's real one would let items spent before it
    be spent again.
    """

    def __init__(self, *, clock: Callable[[], float] = time.monotonic, started: float | None = None) -> None:
        self._clock = clock
        # Whole milliseconds, as on Redis and in the stamps fedgate writes into one-time values.
        now = math.floor(time.time() * 1000) / 1000
        self._generation = Generation(
            id=secrets.token_hex(8), started=now if started is None else check_number(started)
        )
        # key -> (value, deadline or None); numbers from set_max and incr live here too, as text,
        # so get() sees them exactly as it would on Redis.
        self._data: dict[str, tuple[bytes, float | None]] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._streams: dict[str, deque[tuple[str, dict[str, str]]]] = {}
        # key -> {member: deadline}; expired members are dropped whenever the set is touched.
        self._sets: dict[str, dict[str, float]] = {}
        self._last_event: tuple[int, int] = (0, 0)
        self._closed = False

    def __repr__(self) -> str:
        return f"MemoryStore(keys={len(self._data)}, streams={len(self._streams)})"

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise ServiceUnavailable("The store is closed.")

    def _live(self, key: str) -> bytes | None:
        entry = self._data.get(key)
        if entry is None:
            return None
        value, deadline = entry
        if deadline is not None and deadline <= self._clock():
            del self._data[key]
            return None
        return value

    def _put(self, key: str, value: bytes, ttl: float | None) -> None:
        now = self._clock()
        self._sweep(now)
        deadline = None if ttl is None else now + ttl
        self._data[key] = (value, deadline)
        if deadline is not None:
            heapq.heappush(self._deadlines, (deadline, key))

    def _sweep(self, now: float) -> None:
        # A heap entry is stale when its key was since rewritten with another deadline; only drop
        # the key when the deadline still matches.
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, key = heapq.heappop(self._deadlines)
            entry = self._data.get(key)
            if entry is not None and entry[1] == deadline:
                del self._data[key]

    # -- Store -------------------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        """Return the value stored at ``key``, or ``None`` if absent or expired."""
        self._check_open()
        return self._live(key)

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` at ``key``, expiring after ``ttl`` seconds (never, if ``None``)."""
        self._check_open()
        if ttl is not None:
            check_ttl(ttl)
        self._put(key, bytes(value), ttl)

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a value or a set) if present."""
        self._check_open()
        self._data.pop(key, None)
        self._sets.pop(key, None)

    def _live_members(self, key: str) -> dict[str, float]:
        now = self._clock()
        members = {m: d for m, d in self._sets.get(key, {}).items() if d > now}
        if members:
            self._sets[key] = members
        else:
            self._sets.pop(key, None)
        return members

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        """Add ``member`` to the set at ``key`` for ``ttl`` seconds."""
        self._check_open()
        check_ttl(ttl)
        members = self._live_members(key)
        members[member] = max(members.get(member, 0.0), self._clock() + ttl)
        self._sets[key] = members

    async def members(self, key: str) -> list[str]:
        """The unexpired members of the set at ``key``."""
        self._check_open()
        return list(self._live_members(key))

    async def generation(self) -> Generation:
        """The store's one generation: it began when the store was created."""
        self._check_open()
        return self._generation

    async def add_once_in(self, key: str, ttl: float, generation: Generation) -> bool | None:
        """Mark ``key`` as used for ``ttl`` seconds if ``generation`` is this store's; ``True`` only
        the first time, ``None`` for another generation."""
        self._check_open()
        check_ttl(ttl)
        if generation != self._generation:
            return None
        if self._live(key) is not None:
            return False
        self._put(key, b"1", ttl)
        return True

    async def incr(self, key: str, window: float) -> int:
        """Increment a counter that resets ``window`` seconds after its first increment."""
        self._check_open()
        check_ttl(window)
        current = self._live(key)
        if current is None:
            self._put(key, b"1", window)
            return 1
        count = int(current) + 1
        # Keep the deadline of the first increment: a fixed window, not a sliding one.
        self._data[key] = (str(count).encode(), self._data[key][1])
        return count

    async def set_max(self, key: str, value: float) -> float:
        """Raise the number at ``key`` to ``value`` if it is lower; return the result."""
        self._check_open()
        value = check_number(value)
        current = parse_number(self._live(key))
        if current is not None and current >= value:
            return current
        entry = self._data.get(key)
        self._data[key] = (repr(value).encode(), entry[1] if entry is not None else None)
        return value

    async def get_number(self, key: str) -> float | None:
        """Return the number stored by :meth:`set_max`, or ``None``."""
        self._check_open()
        return parse_number(self._live(key))

    async def append_event(self, stream: str, event: Mapping[str, str], maxlen: int = 10_000) -> str:
        """Append ``event`` to ``stream``, trimmed to ``maxlen`` entries; return its id."""
        self._check_open()
        return self._append(stream, [check_event(event, maxlen)], maxlen)[0]

    async def append_events(
        self, stream: str, events: Sequence[Mapping[str, str]], maxlen: int = 10_000
    ) -> str | None:
        """Append every one of ``events`` to ``stream`` at once (checked first); the last one's id."""
        self._check_open()
        ids = self._append(stream, check_events(events, maxlen), maxlen)
        return ids[-1] if ids else None

    def _append(self, stream: str, batch: list[dict[str, str]], maxlen: int) -> list[str]:
        if not batch:
            return []
        entries = self._streams.setdefault(stream, deque())
        ids: list[str] = []
        for fields in batch:
            # Redis-style "milliseconds-sequence" ids, strictly increasing even if the clock stalls.
            ms = time.time_ns() // 1_000_000
            last_ms, last_seq = self._last_event
            self._last_event = (ms, 0) if ms > last_ms else (last_ms, last_seq + 1)
            event_id = f"{self._last_event[0]}-{self._last_event[1]}"
            entries.append((event_id, fields))
            ids.append(event_id)
        while len(entries) > maxlen:
            entries.popleft()
        return ids

    async def read_events(
        self, stream: str, after: str = "0", count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        """Return up to ``count`` events with ids after ``after``, oldest first."""
        self._check_open()
        start = event_id_key(after)
        if count < 1:
            raise ValueError("count must be at least 1")
        result: list[tuple[str, dict[str, str]]] = []
        for event_id, fields in self._streams.get(stream, ()):
            if event_id_key(event_id) > start:
                result.append((event_id, dict(fields)))
                if len(result) == count:
                    break
        return result

    async def ping(self) -> bool:
        """Return ``True`` until the store is closed."""
        return not self._closed

    async def close(self) -> None:
        """Drop everything; later calls raise :class:`~gateway.errors.ServiceUnavailable`."""
        self._closed = True
        self._data.clear()
        self._deadlines.clear()
        self._streams.clear()
