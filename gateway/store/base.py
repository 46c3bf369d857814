"""The store interface shared by every backend.

The store holds the little state fedgate needs beyond its stateless credentials: one-time-use
markers (replay cache), session revocations, cached documents (JWKS, metadata), rate-limit counters,
indexes (sets with expiring members) and an append-only event stream (the interface a Redis-stream
audit sink will use; the built-in sink writes JSON lines instead). Every method is a single atomic
operation on the backend, so replicas sharing one Redis see consistent results.

Keys are plain strings chosen by callers ("replay:saml:ID"); the backend adds its own prefix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

__all__ = ["Store"]


@runtime_checkable
class Store(Protocol):
    """A key-value store with the few atomic operations fedgate needs."""

    async def get(self, key: str) -> bytes | None:
        """Return the value stored at ``key``, or ``None`` if absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl: float | None = None) -> None:
        """Store ``value`` at ``key``, expiring after ``ttl`` seconds (never, if ``None``)."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` (a value or a set) if present."""
        ...

    async def add_once(self, key: str, ttl: float) -> bool:
        """Atomically mark ``key`` as used for ``ttl`` seconds.

        Returns ``True`` the first time and ``False`` while the mark exists: the replay cache.
        """
        ...

    async def add_member(self, key: str, member: str, ttl: float) -> None:
        """Atomically add ``member`` to the set at ``key``; the member expires after ``ttl`` seconds.

        The set lives as long as its longest-lived member. Used for indexes that many writers
        extend at once (the sessions of one SAML subject), where a read-modify-write would lose
        entries.
        """
        ...

    async def members(self, key: str) -> list[str]:
        """The unexpired members of the set at ``key`` (empty if none), in no particular order."""
        ...

    async def incr(self, key: str, window: float) -> int:
        """Increment a counter that resets ``window`` seconds after its first increment.

        Returns the new count: a fixed-window rate limiter.
        """
        ...

    async def set_max(self, key: str, value: float) -> float:
        """Atomically raise the number at ``key`` to ``value`` if it is lower; return the result.

        Used for revocations ("sessions of role R issued before T"), which only ever move forward.
        """
        ...

    async def get_number(self, key: str) -> float | None:
        """Return the number stored by :meth:`set_max`, or ``None``."""
        ...

    async def append_event(self, stream: str, event: Mapping[str, str], maxlen: int = 10_000) -> str:
        """Append ``event`` to ``stream`` (trimmed to about ``maxlen`` entries); return its id."""
        ...

    async def read_events(
        self, stream: str, after: str = "0", count: int = 100
    ) -> list[tuple[str, dict[str, str]]]:
        """Return up to ``count`` events with ids after ``after``, oldest first."""
        ...

    async def ping(self) -> bool:
        """Return ``True`` when the backend is reachable (used by ``/readyz``)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
