"""The replay guard on both backends: once per item, across replicas, and across a store reset."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import redis.asyncio as aioredis

from gateway.errors import ServiceUnavailable
from gateway.store import Generation, MemoryStore, RedisStore, ReplayGuard, Store
from gateway.store.redis import key_pattern
from tests.store.test_store_conformance import StoreFactory


async def test_spend_once_across_replicas(store_factory: StoreFactory) -> None:
    first, second = ReplayGuard(await store_factory()), ReplayGuard(await store_factory())
    now = time.time()
    assert await first.spend("replay:a", 60, now) is True
    assert await second.spend("replay:a", 60, now) is False
    assert await first.spend("replay:a", 60, now) is False
    assert await second.spend("replay:b", 60, now) is True


async def test_spend_concurrent_exactly_one_winner(store_factory: StoreFactory) -> None:
    guards = [ReplayGuard(await store_factory()) for _ in range(2)]
    now = time.time()
    results = await asyncio.gather(*(g.spend("replay:race", 60, now) for _ in range(25) for g in guards))
    assert results.count(True) == 1 and results.count(False) == 49


async def test_items_issued_before_the_generation_are_refused_unmarked(store_factory: StoreFactory) -> None:
    store = await store_factory()
    guard = ReplayGuard(store)
    started = (await guard.current()).started  # an hour ago (see store_factory)
    assert await guard.spend("replay:old", 60, started - 0.001) is False
    assert await guard.spend("replay:old", 60, started - 3600) is False
    # Refusing marked nothing: the same key issued inside the generation is still new.
    assert await guard.spend("replay:old", 60, started) is True


async def test_skew_widens_the_refusal(store_factory: StoreFactory) -> None:
    guard = ReplayGuard(await store_factory())
    started = (await guard.current()).started
    # An issuer whose clock may run 60 s ahead: what it stamps 30 s after the generation began may
    # have been spent 30 s before it.
    assert await guard.spend("replay:skewed", 60, started + 30, skew=60) is False
    assert await guard.spend("replay:skewed", 60, started + 60, skew=60) is True
    assert await guard.spend("replay:skewed", 60, started + 60, skew=60) is False


@pytest.mark.parametrize(
    ("issued_at", "skew"), [(float("nan"), 0.0), (float("inf"), 0.0), (0.0, -1.0), (0.0, float("nan"))]
)
async def test_bad_times_refused(store: Store, issued_at: float, skew: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        await ReplayGuard(store).spend("replay:x", 60, issued_at, skew=skew)


async def test_memory_restart_refuses_what_the_last_process_may_have_spent() -> None:
    # A new process: a new memory store, a new generation, starting now.
    before = MemoryStore(started=time.time() - 3600)
    issued = time.time() - 1
    assert await ReplayGuard(before).spend("replay:a", 60, issued) is True
    after = ReplayGuard(MemoryStore())
    assert await after.spend("replay:a", 60, issued) is False  # spent, or not: nobody knows
    assert await after.spend("replay:fresh", 60, time.time()) is True


async def test_redis_reset_refuses_items_spent_before_it_and_accepts_newer(
    redis_url: str, redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    # A generous deadline: this is about resets, and a loaded machine must not cut an operation.
    replicas = [RedisStore.from_url(redis_url, prefix=redis_prefix, timeout=5.0) for _ in range(2)]
    first, second = (ReplayGuard(s) for s in replicas)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        await first.current()  # the app does this at start-up: items are issued inside a generation
        issued = time.time()
        assert await first.spend("replay:a", 60, issued) is True
        assert await second.spend("replay:a", 60, issued) is False
        old = second.known
        await raw.delete(*[k async for k in raw.scan_iter(match=key_pattern(redis_prefix))])  # the reset
        with caplog.at_level(logging.WARNING, logger="gateway.store.replay"):
            # Both replicas remember the old generation; the store's answer makes them learn the new.
            assert await first.spend("replay:a", 60, issued) is False
            assert await second.spend("replay:a", 60, issued) is False
        assert first.known is not None and first.known == second.known and first.known != old
        warnings = [r for r in caplog.records if r.name == "gateway.store.replay"]
        assert len(warnings) == 2 and all("was reset" in r.getMessage() for r in warnings)
        newer = first.known.started + 0.001
        assert await second.spend("replay:a", 60, newer) is True
        assert await first.spend("replay:a", 60, newer) is False
    finally:
        await raw.aclose()  # type: ignore[attr-defined, unused-ignore]  # stale types-redis stubs
        for store in replicas:
            await store.close()


class _ResetEveryTime:
    """A store whose contents are lost between every two calls: no generation holds still."""

    def __init__(self) -> None:
        self.generations = 0

    async def generation(self) -> Generation:
        self.generations += 1
        return Generation(id=str(self.generations), started=0.0)

    async def add_once_in(self, key: str, ttl: float, generation: Generation) -> bool | None:
        return None


async def test_a_generation_that_will_not_hold_still_is_unavailable() -> None:
    store = _ResetEveryTime()
    guard = ReplayGuard(store)  # type: ignore[arg-type]  # only the two methods the guard uses
    with pytest.raises(ServiceUnavailable, match="reset twice"):
        await guard.spend("replay:x", 60, time.time())
    assert store.generations == 3  # first look, then one new look per refused mark
