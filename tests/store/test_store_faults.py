"""The Redis store against a server of its own that the tests pause, resume, stop and restart empty.

Nothing here times anything: a hung server is shown to cost a deadline (the failure's cause is the
store's own deadline, not the socket timeout) and then nothing (the breaker answers "circuit open"
without asking the server).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.exceptions

from gateway.errors import ServiceUnavailable
from gateway.store import CircuitBreaker, RedisStore, ReplayGuard
from gateway.testing.redis import RedisServer

# Generous, so a loaded machine does not cut healthy operations: what shows the deadline at work is
# the cause of a failure (asyncio's TimeoutError, not redis-py's), not how long it took.
DEADLINE = 1.0
COOLDOWN = 0.1


@pytest.fixture
async def store(private_redis: RedisServer) -> AsyncIterator[RedisStore]:
    opened = RedisStore.from_url(
        private_redis.url,
        prefix=f"faults:{secrets.token_hex(4)}:",
        timeout=DEADLINE,
        breaker=CircuitBreaker(failures=2, cooldown=COOLDOWN),
    )
    try:
        yield opened
    finally:
        private_redis.resume()
        if private_redis.pid is None:
            private_redis.start()
        await opened.close()


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Wait (polling, a few seconds at most) until ``check()`` holds."""
    deadline = time.monotonic() + 10
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"never: {what}")
        await asyncio.sleep(0.02)


async def test_paused_server_costs_a_deadline_then_nothing(
    store: RedisStore, private_redis: RedisServer
) -> None:
    await store.set("k", b"v")
    private_redis.pause()
    for _ in range(2):
        with pytest.raises(ServiceUnavailable, match=r"\(get: TimeoutError\)") as caught:
            await store.get("k")
        # Cut by the store's own deadline (asyncio's TimeoutError), not by redis-py's socket
        # timeout (redis.exceptions.TimeoutError, after five seconds).
        assert type(caught.value.__cause__) is TimeoutError
        assert not isinstance(caught.value.__cause__, redis.exceptions.TimeoutError)
    assert store.breaker.state in ("open", "half-open")
    with pytest.raises(ServiceUnavailable, match="circuit open"):
        await store.get("k")
    assert await store.ping() is False
    private_redis.resume()
    await until(store.ping, "the store answers after SIGCONT")
    assert store.breaker.state == "closed"
    assert await store.get("k") == b"v"  # a paused server keeps its data


async def test_restarted_server_is_used_again_with_a_new_generation(
    store: RedisStore, private_redis: RedisServer
) -> None:
    guard = ReplayGuard(store)
    before = await guard.current()
    issued = time.time()
    assert await guard.spend("replay:a", 60, issued) is True
    await store.set("k", b"v")
    private_redis.restart()

    async def answers() -> bool:
        try:
            await store.get("k")
        except ServiceUnavailable:
            return False
        return True

    # The pooled connections died with the server; the client reconnects without a restart of ours.
    await until(answers, "the store answers after a restart")
    assert await store.get("k") is None  # restarted empty
    assert await guard.spend("replay:a", 60, issued) is False  # the mark is gone; the item is not new
    after = guard.known
    assert after is not None and after.id != before.id and after.started >= before.started


async def test_stopped_server_refuses_fast_and_readiness_follows(
    store: RedisStore, private_redis: RedisServer
) -> None:
    private_redis.stop()
    for _ in range(2):
        with pytest.raises(ServiceUnavailable, match="ConnectionError"):
            await store.get("k")
    with pytest.raises(ServiceUnavailable, match="circuit open"):
        await store.generation()
    private_redis.start()
    await until(store.ping, "the store answers after it was started again")


async def test_close_does_not_wait_for_a_hung_server(store: RedisStore, private_redis: RedisServer) -> None:
    await store.set("k", b"v")  # a pooled connection to the server
    private_redis.pause()
    with pytest.raises(ServiceUnavailable):
        await store.get("k")
    await store.close()  # returns (bounded): shutdown is not held up by the server
    with pytest.raises(ServiceUnavailable, match="closed"):
        await store.get("k")
