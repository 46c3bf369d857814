"""Backend-specific behaviour beyond the conformance suite: factory, prefixes, failures, bounds."""

from __future__ import annotations

import socket

import pytest
import redis.asyncio as aioredis

from gateway.config import SecretRef, StoreSettings
from gateway.errors import ConfigError, ServiceUnavailable
from gateway.store import MemoryStore, RedisStore, Store, open_store


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
        assert await raw.get(prefix + "k") == b"v"
        assert await raw.xlen(prefix + "audit") == 1
    finally:
        await raw.aclose()  # type: ignore[attr-defined, unused-ignore]  # stale types-redis stubs
        await store.close()


async def test_redis_unreachable_raises_service_unavailable_without_password() -> None:
    url = f"redis://user:s3cret-pw@127.0.0.1:{_closed_port()}/0"
    store = RedisStore.from_url(url, prefix="x:", socket_connect_timeout=1)
    assert await store.ping() is False
    with pytest.raises(ServiceUnavailable) as caught:
        await store.add_once("k", 1)
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
    for i in range(1000):
        assert await store.add_once(f"replay:{i}", 10)
    now[0] = 11.0
    # A write sweeps everything that expired, so one-time markers do not pile up.
    assert await store.add_once("replay:new", 10)
    assert repr(store) == "MemoryStore(keys=1, streams=0)"
    assert await store.add_once("replay:0", 10) is True


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
    assert await second.add_once("k", 1) is True
