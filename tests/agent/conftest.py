"""Helpers for the agent's unit tests: a clock and sleep the test drives, and a scripted source.

The source stands in for the gateway only in tests of what sits above it (the keeper's schedule,
the HTTP adapters); the gateway itself is exercised for real in ``tests/flows/test_agent*.py``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from gateway.agent.credentials import Credentials
from gateway.agent.errors import SourceError

ROLE_ARN = "arn:aws:iam::123456789012:role/app"


class FakeTime:
    """``clock`` and ``sleep`` for a keeper: sleeping advances the clock at once.

    After ``limit`` sleeps the next one raises ``CancelledError``, which ends ``RoleKeeper.run``.
    """

    def __init__(self, start: float = 1_800_000_000.0, limit: int = 100) -> None:
        self.now = start
        self.sleeps: list[float] = []
        self.limit = limit
        self.on_sleep: Callable[[float], None] | None = None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        if len(self.sleeps) >= self.limit:
            raise asyncio.CancelledError
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(self.now)
        await asyncio.sleep(0)


def credentials(expires_at: float, *, key: str | None = None) -> Credentials:
    """Credentials expiring at ``expires_at`` (whole seconds, as STS gives them)."""
    return Credentials(
        access_key_id=key or "ASIA" + secrets.token_hex(8).upper(),
        secret_access_key="s" * 40,
        session_token="t" * 200,
        expiration=datetime.fromtimestamp(int(expires_at), UTC),
        arn="arn:aws:sts::123456789012:assumed-role/app/test",
    )


Outcome = float | BaseException | Callable[[], Awaitable[Credentials]]


class ScriptedSource:
    """Answers each fetch with the next outcome: a lifetime in seconds, an exception to raise, or a
    coroutine function to await; the last outcome repeats."""

    def __init__(self, time: FakeTime, *outcomes: Outcome) -> None:
        self._time = time
        self._outcomes = list(outcomes)
        self.fetches = 0
        self.issued: list[Credentials] = []

    def describe(self) -> str:
        return "scripted source"

    async def fetch(self) -> Credentials:
        self.fetches += 1
        outcome = self._outcomes.pop(0) if len(self._outcomes) > 1 else self._outcomes[0]
        if isinstance(outcome, BaseException):
            raise outcome
        if callable(outcome):
            creds = await outcome()
        else:
            creds = credentials(self._time.now + outcome)
        self.issued.append(creds)
        return creds


def refused(message: str = "cannot reach the gateway at http://127.0.0.1:1: Connection refused") -> Any:
    """A source failure, as the STS client raises it."""
    return SourceError(message)
