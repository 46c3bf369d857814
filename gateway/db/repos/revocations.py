"""Revocation cutoffs: for each scope, the moment before which its sessions are revoked.

A cutoff only moves forward: raising it is one ``UPDATE ... WHERE cutoff < :new`` (so even a writer
that skipped the revision lock could not lower it), and a scope seen for the first time is
inserted. Each row carries the revision that last raised it, so a replica reads only what changed
since the revision it knows.
"""

from __future__ import annotations

import math
from typing import Any, final

from sqlalchemy import Row, insert, select, update

from gateway.db import schema
from gateway.db.records import RevocationRecord
from gateway.db.repos.base import Repo, check_length

__all__ = ["RevocationRepo"]


@final
class RevocationRepo(Repo):
    """Session revocations by ``(kind, scope)``: ``("role", ROLE_ARN)`` today."""

    __slots__ = ()

    @staticmethod
    def _record(row: Row[Any]) -> RevocationRecord:
        return RevocationRecord(kind=row.kind, scope=row.scope, cutoff=row.cutoff, revision=row.revision)

    async def raise_cutoff(self, kind: str, scope: str, before: float) -> float:
        """Raise the cutoff of ``(kind, scope)`` to ``before`` unless it is higher; return the result."""
        check_length(kind, 32, "a revocation kind")
        check_length(scope, schema.ARN, "a revocation scope")
        if not math.isfinite(before):
            raise ValueError("the cutoff must be a finite time")
        r = schema.revocations
        values = {"cutoff": before, "revision": self._ctx.revision, "updated_at": self.now()}
        raised = await self._write(
            update(r).where(r.c.kind == kind, r.c.scope == scope, r.c.cutoff < before).values(**values)
        )
        if raised.rowcount:
            return before
        known = await self.get(kind, scope)
        if known is not None:
            return known
        await self._write(insert(r).values(kind=kind, scope=scope, **values))
        return before

    async def get(self, kind: str, scope: str) -> float | None:
        """The cutoff of ``(kind, scope)``, or ``None``."""
        r = schema.revocations
        value = await self._scalar(select(r.c.cutoff).where(r.c.kind == kind, r.c.scope == scope))
        return None if value is None else float(value)

    async def since(self, revision: int) -> list[RevocationRecord]:
        """Every cutoff raised after ``revision`` (all of them for 0)."""
        r = schema.revocations
        rows = await self._rows(select(r).where(r.c.revision > revision).order_by(r.c.kind, r.c.scope))
        return [self._record(row) for row in rows]
