"""Session revocations held in memory, monotonic, and refused when they cannot be confirmed current.

A revocation is a cutoff for a *scope*: "sessions of role R issued before T are revoked". The
durable record lives in the IAM database (:mod:`gateway.db`), which keeps the greatest cutoff per
scope; every replica holds the whole revocation state in a :class:`Revocations`, so validating a
session does no I/O. The database feed merges what it reads (cutoffs only ever move forward here
too, whatever the database says) and confirms, after each successful check, that nothing newer
exists. A state that is not loaded yet, or was last confirmed longer ago than the staleness bound,
makes every check raise :class:`~gateway.errors.ServiceUnavailable`: a replica that cannot know
whether a session was revoked refuses it rather than accept it.

Scopes are named by a *kind* and a *value*: ``("role", ROLE_ARN)`` (a role's sessions),
``("user", USER_ARN)`` (an IAM user's own and federated-user sessions, from ``GetSessionToken`` and
``GetFederationToken``) and ``("access-key", AKIA...)`` (the sessions a long-term key asked for). A
session chained from another falls with the scopes of every session it descends from.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Protocol, final

from gateway.errors import ServiceUnavailable

__all__ = ["ACCESS_KEY", "ROLE", "USER", "RevocationWriter", "Revocations"]

log = logging.getLogger(__name__)

#: The kind of scope revoking every session of one role (the value is the role's ARN).
ROLE = "role"
#: The kind of scope revoking the sessions an IAM user asked for (the value is the user's ARN).
USER = "user"
#: The kind of scope revoking the sessions asked for with one long-term access key (its id).
ACCESS_KEY = "access-key"

_STALE_LOG_INTERVAL = 10.0


class RevocationWriter(Protocol):
    """Where revocations are recorded durably (the IAM database implements it)."""

    async def raise_cutoff(self, kind: str, scope: str, before: float) -> float:
        """Raise the cutoff of ``(kind, scope)`` to ``before`` unless it is higher; return the
        cutoff in force, committed."""
        ...


@final
class Revocations:
    """Every revocation cutoff this replica knows, and whether it may rely on them.

    Args:
        writer: the durable record :meth:`revoke` writes to first; ``None`` only for
            :meth:`local`.
        max_staleness: seconds after the last confirmation during which the state counts as current.
        monotonic: monotonic seconds.
    """

    def __init__(
        self,
        writer: RevocationWriter | None,
        *,
        max_staleness: float,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if not max_staleness > 0:
            raise ValueError("max_staleness must be positive")
        self._writer = writer
        self._max_staleness = max_staleness
        self._monotonic = monotonic
        self._cutoffs: dict[tuple[str, str], float] = {}
        self._confirmed_at: float | None = None  # None: never loaded
        self._always_current = False
        self._stale_logged_at = -math.inf

    @classmethod
    def local(cls) -> Revocations:
        """State that lives in this object only and is always current.

        For tests and tools with no gateway to share revocations with; the gateway itself always
        feeds its state from the IAM database.
        """
        state = cls(None, max_staleness=math.inf)
        state._always_current = True
        return state

    def __repr__(self) -> str:
        return f"Revocations(scopes={len(self._cutoffs)}, current={self.current})"

    @property
    def current(self) -> bool:
        """Whether the state is loaded and was confirmed within the staleness bound."""
        if self._always_current:
            return True
        confirmed = self._confirmed_at
        return confirmed is not None and self._monotonic() - confirmed <= self._max_staleness

    def cutoff(self, kind: str, scope: str) -> float | None:
        """The cutoff of ``(kind, scope)``, or ``None`` if none.

        Raises :class:`~gateway.errors.ServiceUnavailable` when the state is not current.
        """
        if not self.current:
            self._refuse()
        return self._cutoffs.get((kind, scope))

    def is_revoked(self, kind: str, scope: str, issued_at: float) -> bool:
        """Whether a session of ``(kind, scope)`` issued at ``issued_at`` is revoked (fails closed)."""
        cutoff = self.cutoff(kind, scope)
        return cutoff is not None and issued_at < cutoff

    def merge(self, entries: Iterable[tuple[str, str, float]]) -> None:
        """Take in ``(kind, scope, cutoff)`` entries; a cutoff lower than the one known changes nothing."""
        cutoffs = self._cutoffs
        for kind, scope, cutoff in entries:
            key = (kind, scope)
            known = cutoffs.get(key)
            if known is None or cutoff > known:
                cutoffs[key] = cutoff

    def confirm(self, at: float) -> None:
        """Record that at monotonic time ``at`` the state held everything the database held."""
        if self._confirmed_at is None or at > self._confirmed_at:
            if (
                self._confirmed_at is not None
                and self._monotonic() - self._confirmed_at > self._max_staleness
            ):
                log.warning("revocation state is current again; signed requests are accepted")
            self._confirmed_at = at

    async def revoke(self, kind: str, scope: str, before: float) -> float:
        """Revoke sessions of ``(kind, scope)`` issued before ``before``: durably first, then here.

        Returns the cutoff in force (never lower than one known before). Raises what the writer
        raises (e.g. :class:`~gateway.errors.DatabaseUnavailable`), in which case nothing changed.
        """
        if not math.isfinite(before):
            raise ValueError("the cutoff must be a finite time")
        cutoff = before if self._writer is None else await self._writer.raise_cutoff(kind, scope, before)
        self.merge([(kind, scope, cutoff)])
        return self._cutoffs[(kind, scope)]

    def _refuse(self) -> None:
        now = self._monotonic()
        if now - self._stale_logged_at >= _STALE_LOG_INTERVAL:
            self._stale_logged_at = now
            since = "never loaded" if self._confirmed_at is None else f"{now - self._confirmed_at:.1f} s"
            log.warning(
                "refusing signed requests: revocation state not confirmed current (%s; bound %.1f s)",
                since,
                self._max_staleness,
            )
        raise ServiceUnavailable("The service cannot verify session revocations right now; retry later.")
