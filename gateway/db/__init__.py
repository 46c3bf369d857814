"""The IAM database: durable IAM entities and session revocations on SQLite or PostgreSQL.

Pure domain code (no aiohttp): SQLAlchemy 2 Core on asyncio drivers (aiosqlite, asyncpg), schema
versions by Alembic (scripts packaged in ``gateway/db/migrations``).

- :class:`IamDatabase`: one interface for both backends; ``async with db.write() as tx`` gives
  serialized, all-or-nothing write transactions whose typed repositories (``tx.users``,
  ``tx.policies``, ``tx.access_keys``...) create, read, update and delete every IAM entity;
  :meth:`IamDatabase.load` returns them all as frozen records (:mod:`gateway.db.records`).
- :class:`RevisionWatcher`: tells subscribers when the revision moves (PostgreSQL LISTEN/NOTIFY,
  and polling as the safety net).
- :func:`start_database`: what a gateway runs at start-up; it also keeps the replica's in-memory
  revocation state current (:class:`RevocationFeed`).
"""

from __future__ import annotations

from gateway.db.database import IamDatabase, unavailable_reason
from gateway.db.engine import DatabaseTarget, target_for
from gateway.db.feed import RevocationFeed
from gateway.db.records import IamSnapshot
from gateway.db.runtime import DatabaseRuntime, start_database
from gateway.db.transaction import Transaction
from gateway.db.usage import KeyUsageRecorder
from gateway.db.watch import RevisionWatcher, Subscription

__all__ = [
    "DatabaseRuntime",
    "DatabaseTarget",
    "IamDatabase",
    "IamSnapshot",
    "KeyUsageRecorder",
    "RevisionWatcher",
    "RevocationFeed",
    "Subscription",
    "Transaction",
    "start_database",
    "target_for",
    "unavailable_reason",
]
