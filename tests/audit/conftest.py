"""Helpers for the audit tests (the private redis-server fixture is ``private_redis`` in
tests/conftest.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` (a background task's progress); the per-test timeout bounds it."""
    while not condition():  # noqa: ASYNC110  # the sink's counters have no event to wait on
        await asyncio.sleep(0.01)
