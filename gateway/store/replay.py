"""One-time use that survives a store reset: the one home of every replay-protected item.

A replay mark lives in the store. If the store loses its contents (Redis restarted without
persistence, a new process for the memory store), the marks of items spent before are gone, and a
plain "mark once" would accept those items again. The store's :class:`~gateway.store.base.Generation`
says when its current contents began; an item issued before that moment may have been spent
before it, so :meth:`ReplayGuard.spend` refuses it. Items issued after it cannot have been spent
before it, and their marks are all there.

Every item therefore comes with the time it was issued, from a source the caller can prove: the
``IssueInstant`` of a signed SAML message, a time fedgate wrote into a token it signed or into a
value only its own store record matches, the time step of a TOTP code. ``skew`` is how far the
issuer's clock may run ahead of the store's and still be accepted (the leeway the caller allows
for that issuer): such an item may have been presented, and spent, up to ``skew`` before its
stated issue time, so it is refused unless it was issued at least ``skew`` after the generation
began. Items fedgate issues itself use no skew: replicas and Redis are expected to share a clock,
as SigV4 and credential expiry already require.

The generation check and the mark are one atomic store operation (one Lua script on Redis), so a
reset cannot slip between them; when the store answers that its generation changed, the guard
learns the new one and decides again. Each guard remembers the generation it last saw, so the
steady state costs one round trip per spend.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime
from typing import final

from gateway.errors import ServiceUnavailable
from gateway.store.base import Generation, Store

__all__ = ["ReplayGuard"]

log = logging.getLogger(__name__)


@final
class ReplayGuard:
    """Spends one-time items in ``store`` at most once, across resets of the store."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: Generation | None = None

    def __repr__(self) -> str:
        return f"ReplayGuard(store={self._store!r})"

    @property
    def known(self) -> Generation | None:
        """The generation this guard last saw (``None`` before the first look)."""
        return self._known

    async def current(self) -> Generation:
        """Ask the store for its generation (starting one if it has none) and remember it.

        Logs one warning when it differs from the one seen before: the store was reset. Raises
        :class:`~gateway.errors.ServiceUnavailable` when the store cannot answer.
        """
        generation = await self._store.generation()
        previous = self._known
        if previous is not None and generation.id != previous.id:
            log.warning(
                "the store was reset: one-time items issued before its new generation are refused",
                extra={"store_generation_started": _iso(generation.started)},
            )
        self._known = generation
        return generation

    async def spend(self, key: str, ttl: float, issued_at: float, *, skew: float = 0.0) -> bool:
        """Mark the item ``key`` as used for ``ttl`` seconds; ``True`` only if this is its first use.

        ``False`` when it was spent already, or when it was issued (``issued_at``, epoch seconds)
        before the store's current generation began plus ``skew``: it may have been spent before
        the reset. ``ttl`` must cover the item's whole acceptable life. Raises
        :class:`~gateway.errors.ServiceUnavailable` when the store cannot answer.
        """
        if not (math.isfinite(issued_at) and math.isfinite(skew) and skew >= 0):
            raise ValueError("issued_at must be a finite time and skew a finite, non-negative number")
        generation = self._known or await self.current()
        # Two rounds: the remembered generation, then the store's new one if it was reset. A
        # generation that changes again at once is no state to decide on.
        for _ in range(2):
            if issued_at - skew < generation.started:
                return False
            spent = await self._store.add_once_in(key, ttl, generation)
            if spent is not None:
                return spent
            generation = await self.current()
        raise ServiceUnavailable("The store was reset twice during one operation.")


def _iso(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
