"""Backend-specific behaviour beyond the conformance suite: factory, prefixes, failures, bounds."""

from __future__ import annotations

import socket
import time

import pytest
import redis.asyncio as aioredis

from gateway.config import SecretRef, StoreSettings
from gateway.errors import ConfigError, ServiceUnavailable
from gateway.store import CircuitBreaker, MemoryStore, RedisStore, Store, open_store
from gateway.store.base import GENERATION_KEY
from gateway.store.redis import key_pattern, redis_key


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_open_store_memory_is_default() -> None:
    store = open_store(StoreSettings())
    assert isinstance(store, MemoryStore)
    assert isinstance(store, Store)
    await store.close()


async def test_open_store_redis(redis_url: str, redis_run_prefix: str) -> None:
    store = open_store(StoreSettings(backend="redis", url=redis_url, prefix=redis_run_prefix + "f:"))
    assert isinstance(store, RedisStore)
    assert isinstance(store, Store)
    assert await store.ping() is True
    await store.close()


async def test_open_store_redis_url_from_secret_ref(
    redis_url: str, redis_run_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FEDGATE_TEST_STORE_URL", redis_url)
    settings = StoreSettings(
        backend="redis", url=SecretRef(env="FEDGATE_TEST_STORE_URL"), prefix=redis_run_prefix
    )
    store = open_store(settings)
    assert await store.ping() is True
    await store.close()


def test_open_store_bad_url_names_setting_not_secret() -> None:
    with pytest.raises(ConfigError, match=r"^store\.url: ") as caught:
        open_store(StoreSettings(backend="redis", url="http://user:hunter2@example.com/0"))
    assert "hunter2" not in str(caught.value)


def test_open_store_missing_env_names_setting() -> None:
    settings = StoreSettings(backend="redis", url=SecretRef(env="FEDGATE_TEST_SURELY_UNSET_VAR"))
    with pytest.raises(ConfigError, match=r"store\.url: environment variable FEDGATE_TEST_SURELY_UNSET_VAR"):
        open_store(settings)


async def test_redis_keys_carry_prefix(redis_url: str, redis_run_prefix: str) -> None:
    prefix = redis_run_prefix + "p:"
    store = RedisStore.from_url(redis_url, prefix=prefix)
    await store.set("k", b"v")
    await store.append_event("audit", {"x": "1"})
    raw = aioredis.Redis.from_url(redis_url)
    try:
        # {PREFIX}:NAME: the prefix (less its trailing colon) is the key's hash tag.
        assert await raw.get("{" + prefix[:-1] + "}:k") == b"v"
        assert await raw.xlen("{" + prefix[:-1] + "}:audit") == 1
    finally:
        await raw.aclose()  # type: ignore[attr-defined, unused-ignore]  # stale types-redis stubs
        await store.close()


async def test_redis_unreachable_raises_service_unavailable_without_password() -> None:
    url = f"redis://user:s3cret-pw@127.0.0.1:{_closed_port()}/0"
    store = RedisStore.from_url(url, prefix="x:", socket_connect_timeout=1)
    assert await store.ping() is False
    with pytest.raises(ServiceUnavailable) as caught:
        await store.generation()
    assert caught.value.code == "ServiceUnavailable"
    assert caught.value.status == 503
    assert "s3cret-pw" not in str(caught.value)
    assert "s3cret-pw" not in repr(store)
    assert caught.value.__cause__ is not None  # the redis error is chained for the logs
    await store.close()


def test_redis_invalid_url_message_hides_password() -> None:
    with pytest.raises(ValueError, match="not a valid Redis URL") as caught:
        RedisStore.from_url("ftp://u:pa55w0rd@host/0", prefix="x:")
    assert "pa55w0rd" not in str(caught.value)


async def test_memory_sweeps_expired_entries() -> None:
    now = [0.0]
    store = MemoryStore(clock=lambda: now[0])
    generation = await store.generation()
    for i in range(1000):
        assert await store.add_once_in(f"replay:{i}", 10, generation)
    now[0] = 11.0
    # A write sweeps everything that expired, so one-time markers do not pile up.
    assert await store.add_once_in("replay:new", 10, generation)
    assert repr(store) == "MemoryStore(keys=1, streams=0)"
    assert await store.add_once_in("replay:0", 10, generation) is True


async def test_memory_uses_its_clock_for_expiry() -> None:
    now = [100.0]
    store = MemoryStore(clock=lambda: now[0])
    await store.set("k", b"v", ttl=5)
    assert await store.incr("rate", 5) == 1
    now[0] = 104.9
    assert await store.get("k") == b"v"
    assert await store.incr("rate", 5) == 2
    now[0] = 105.0
    assert await store.get("k") is None
    assert await store.incr("rate", 5) == 1


async def test_memory_events_trimmed_exactly() -> None:
    store = MemoryStore()
    ids = [await store.append_event("audit", {"n": str(i)}, maxlen=3) for i in range(10)]
    assert [e for e, _ in await store.read_events("audit")] == ids[-3:]


async def test_memory_stores_are_independent() -> None:
    # No module-level state: two stores in one process share nothing.
    first, second = MemoryStore(), MemoryStore()
    await first.set("k", b"v")
    assert await second.get("k") is None
    # Each has a generation of its own: a mark made in one is no mark in the other.
    assert await first.generation() != await second.generation()
    assert await first.add_once_in("once", 1, await first.generation()) is True
    assert await second.add_once_in("once", 1, await first.generation()) is None
    assert await second.add_once_in("once", 1, await second.generation()) is True


async def test_memory_generation_begins_with_the_store() -> None:
    before = time.time()
    store = MemoryStore()
    after = time.time()
    generation = await store.generation()
    assert before - 0.001 <= generation.started <= after  # whole milliseconds, as on Redis
    assert (await MemoryStore(started=1_700_000_000.0).generation()).started == 1_700_000_000.0
    with pytest.raises(ValueError, match="finite"):
        MemoryStore(started=float("nan"))


async def test_redis_generation_uses_the_server_clock_and_survives_clients(
    redis_url: str, redis_prefix: str
) -> None:
    before = time.time()
    first = RedisStore.from_url(redis_url, prefix=redis_prefix)
    second = RedisStore.from_url(redis_url, prefix=redis_prefix)
    try:
        generation = await first.generation()
        # The server's TIME (the same host's clock here), to the millisecond.
        assert before - 1 <= generation.started <= time.time() + 1
        await first.close()
        assert await second.generation() == generation  # a new client, the same generation
    finally:
        await first.close()
        await second.close()


async def test_redis_reset_starts_a_new_generation(redis_url: str, redis_prefix: str) -> None:
    store = RedisStore.from_url(redis_url, prefix=redis_prefix)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        old = await store.generation()
        assert await store.add_once_in("replay:a", 60, old) is True
        # Everything under the prefix gone, as after a restart without persistence.
        await raw.delete(*[k async for k in raw.scan_iter(match=key_pattern(redis_prefix))])
        assert await store.add_once_in("replay:a", 60, old) is None  # the mark was not recreated
        new = await store.generation()
        assert new.id != old.id and new.started >= old.started
        assert await store.add_once_in("replay:a", 60, new) is True
    finally:
        await raw.aclose()  # type: ignore[attr-defined, unused-ignore]  # stale types-redis stubs
        await store.close()


async def test_redis_unreadable_generation_fails_closed(redis_url: str, redis_prefix: str) -> None:
    store = RedisStore.from_url(redis_url, prefix=redis_prefix)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        await raw.set(redis_key(redis_prefix, GENERATION_KEY), b"not a generation")
        with pytest.raises(ServiceUnavailable, match="generation marker is unreadable"):
            await store.generation()
        await raw.delete(redis_key(redis_prefix, GENERATION_KEY))  # the operator's fix
        assert (await store.generation()).started > 0
    finally:
        await raw.aclose()  # type: ignore[attr-defined, unused-ignore]  # stale types-redis stubs
        await store.close()


async def test_redis_operations_through_the_breaker_fail_fast_once_open() -> None:
    # Nothing listens: connections are refused. Three failures open the breaker (the default);
    # then operations fail without trying, saying so, until the cool-down is over.
    now = [0.0]
    breaker = CircuitBreaker(failures=3, cooldown=5.0, monotonic=lambda: now[0])
    store = RedisStore.from_url(f"redis://127.0.0.1:{_closed_port()}/0", prefix="x:", breaker=breaker)
    try:
        for _ in range(3):
            with pytest.raises(ServiceUnavailable, match="ConnectionError"):
                await store.get("k")
        assert breaker.state == "open"
        with pytest.raises(ServiceUnavailable, match="circuit open"):
            await store.get("k")
        assert await store.ping() is False
        now[0] = 5.0
        assert breaker.state == "half-open"
        with pytest.raises(ServiceUnavailable, match="ConnectionError"):  # the probe tried, and failed
            await store.get("k")
        assert breaker.state == "open"
    finally:
        await store.close()
