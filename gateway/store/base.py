"""The store interface shared by every backend.

The store holds the little state fedgate needs beyond its stateless credentials: one-time-use
markers (replay cache, always through :class:`~gateway.store.replay.ReplayGuard`), session
revocations, cached documents (JWKS, metadata), rate-limit counters, indexes (sets with expiring
members) and an append-only event stream (where the audit sink ``store`` appends, in batches).
Every method is a single atomic operation on the backend, so replicas sharing one Redis see
consistent results.

Every store has a *generation*: a random id and the wall-clock moment it began, created by the
first user that finds none. A store that loses its contents (a Redis restarted without persistence,
a new process for the memory store) comes back with a new generation, which is how one-time-use
markers that may have been lost are told apart from items never seen (see
:mod:`gateway.store.replay`).

Keys are plain strings chosen by callers ("replay:saml:ID"); the backend adds its own prefix. The
key ``store:generation`` is the backend's own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["GENERATION_KEY", "Generation", "Store"]

#: Where a backend keeps its generation marker (under its prefix).
GENERATION_KEY = "store:generation"


@dataclass(frozen=True, slots=True)
class Generation:
    """One lifetime of a store's contents.

    Attributes:
        id: random, new each time the store starts empty.
        started: epoch seconds (the store's clock: Redis ``TIME``, or the process's wall clock for
            the memory store) at which this generation began. Nothing spent before it is remembered.
    """

    id: str
    started: float


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

    async def generation(self) -> Generation:
        """The store's current generation; the first caller to find none starts one (atomically, so
        every replica agrees on it)."""
        ...

    async def add_once_in(self, key: str, ttl: float, generation: Generation) -> bool | None:
        """Atomically mark ``key`` as used for ``ttl`` seconds, if the store is still in ``generation``.

        Returns ``True`` the first time, ``False`` while the mark exists, and ``None`` (marking
        nothing) when the store's generation is not ``generation``: it was reset since. The check and
        the mark are one atomic step, so a reset cannot slip between them. Callers use
        :class:`~gateway.store.replay.ReplayGuard`, not this method.
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

    async def append_events(
        self, stream: str, events: Sequence[Mapping[str, str]], maxlen: int = 10_000
    ) -> str | None:
        """Append all of ``events`` to ``stream``, in order, in one step; return the last one's id.

        The batch is all or nothing on the client side (an invalid event refuses the batch before
        anything is written) and contiguous: no other append lands between its events. On Redis
        it is one round trip (one script running ``XADD MAXLEN ~`` per event): the audit sink's
        way to keep up with the request rate. An empty batch appends nothing and returns ``None``.
        """
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
