"""The Redis store on Sentinel and Cluster: settings, hash-tagged keys, and a failover survived.

The conformance suite runs on both topologies through ``store_factory`` (tests/conftest.py); this
module covers what only they have: the settings naming their keys, every key of a deployment in one
cluster slot, and a sentinel failover (the primary killed, the replica promoted) that the store and
a live gateway ride out without a restart, refusing one-time items meanwhile (fail closed) and still
telling a wiped store by its generation.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from gateway import keys
from gateway.config import StoreSettings
from gateway.errors import ConfigError, ServiceUnavailable
from gateway.store import CircuitBreaker, RedisStore, ReplayGuard, open_store
from gateway.store.redis import redis_key
from gateway.testing.redis import RedisClusterSet, RedisSentinelSet, backdate_generation
from tests.conftest import config_from, eventually, serve_app


def _config(store: dict[str, Any]) -> dict[str, Any]:
    return {"account_id": "123456789012", "audit": {"sink": "none"}, "store": store}


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (
            {"backend": "redis", "sentinel": {"addresses": ["127.0.0.1:26379", "nohost"], "service": "m"}},
            r"store\.sentinel\.addresses\[1\]: expected HOST:PORT",
        ),
        ({"backend": "redis", "sentinel": {"addresses": []}}, r"store\.sentinel\.addresses: .*at least 1"),
        (
            {"backend": "redis", "sentinel": {"addresses": ["a:1"]}},
            r"store\.sentinel\.service: Field required",
        ),
        (
            {"backend": "redis", "cluster": {"nodes": ["a:70000"]}},
            r"store\.cluster\.nodes\[0\]: expected HOST:PORT",
        ),
        (
            {"backend": "redis", "url": "redis://a/0", "cluster": {"nodes": ["a:7000"]}},
            r"store: give one of url, sentinel or cluster, not url and cluster",
        ),
        ({"cluster": {"nodes": ["a:7000"]}}, r"store: cluster needs backend: redis"),
        ({"backend": "redis", "prefix": "{x}:"}, r"store\.prefix: must not contain \{ or \}"),
    ],
)
def test_topology_settings_name_the_key(store: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config_from(_config(store))


def test_a_missing_topology_password_names_its_key() -> None:
    cluster = {"nodes": ["127.0.0.1:7000"], "password": {"env": "FEDGATE_TEST_SURELY_UNSET_VAR"}}
    with pytest.raises(ConfigError, match=r"^store\.cluster\.password: environment variable"):
        open_store(StoreSettings(backend="redis", cluster=cluster))  # type: ignore[arg-type]


async def test_open_store_on_sentinel_and_cluster(
    redis_sentinel: RedisSentinelSet, redis_cluster: RedisClusterSet
) -> None:
    prefix = f"t:{secrets.token_hex(4)}:"
    sentinel = {
        "addresses": [f"{host}:{port}" for host, port in redis_sentinel.sentinels],
        "service": redis_sentinel.service,
        "password": {"value": redis_sentinel.password},
    }
    cluster = {
        "nodes": [f"{host}:{port}" for host, port in redis_cluster.startup_nodes],
        "password": {"value": redis_cluster.password},
    }
    for topology in ({"sentinel": sentinel}, {"cluster": cluster}):
        settings = config_from(_config({"backend": "redis", "prefix": prefix, **topology})).store
        store = open_store(settings)
        try:
            assert await store.ping() is True
            await store.set("k", b"v")
            assert await store.get("k") == b"v"
        finally:
            await store.close()
    with redis_sentinel.primary.client() as client:
        assert client.get(redis_key(prefix, "k")) == b"v"


async def test_every_key_of_a_deployment_is_in_one_cluster_slot(redis_cluster: RedisClusterSet) -> None:
    prefix = f"t:{secrets.token_hex(4)}:"
    store = RedisStore.from_cluster(
        redis_cluster.startup_nodes, prefix=prefix, password=redis_cluster.password
    )
    try:
        guard = ReplayGuard(store)
        assert await guard.spend("replay:a", 60, time.time() + 1) is True  # two keys, one script
        await store.set("k", b"v")
        await store.incr("rate:x", 60)
        await store.set_max("revoked:r", 1.0)
        await store.add_member("index:s", "m", 60)
        await store.append_events("audit", [{"a": "1"}, {"b": "2"}])
    finally:
        await store.close()
    with redis_cluster.client() as client:
        names = [redis_key(prefix, n) for n in ("store:generation", "replay:a", "k", "rate:x", "revoked:r")]
        names += [redis_key(prefix, "index:s"), redis_key(prefix, "audit")]
        slots = {client.keyslot(name) for name in names}
        assert len(slots) == 1
        assert all(client.exists(name) for name in names)
        # And the slot is the prefix's: another deployment's keys may live on another node.
        assert slots == {client.keyslot(prefix.rstrip(":"))}


@pytest.fixture
def sentinel_set() -> Iterator[RedisSentinelSet]:
    """A sentinel-managed primary and replica of this test's own: it fails the primary over."""
    with RedisSentinelSet(password=secrets.token_hex(12)) as topology:
        yield topology


@pytest.fixture
async def sentinel_store(sentinel_set: RedisSentinelSet) -> AsyncIterator[RedisStore]:
    store = RedisStore.from_sentinel(
        sentinel_set.sentinels,
        sentinel_set.service,
        prefix="fedgate:",
        password=sentinel_set.password,
        timeout=1.0,
        breaker=CircuitBreaker(failures=2, cooldown=0.1),
    )
    yield store
    await store.close()


async def _answers(store: RedisStore) -> bool:
    try:
        await store.get("probe")
    except ServiceUnavailable:
        return False
    return True


async def test_a_sentinel_failover_is_ridden_out_closed_meanwhile(
    sentinel_set: RedisSentinelSet, sentinel_store: RedisStore
) -> None:
    guard = ReplayGuard(sentinel_store)
    before = await guard.current()
    issued = time.time() + 0.01
    assert await guard.spend("replay:spent", 60, issued) is True
    with sentinel_set.primary.client() as client:
        # Replication is asynchronous: wait until the replica has the mark, as a primary that has
        # been up for a moment would have it (a mark made in the last instant can be lost).
        assert client.wait(1, 5000) == 1

    old = sentinel_set.kill_primary()
    # Until the sentinel promotes the replica, one-time items are refused, never allowed.
    with pytest.raises(ServiceUnavailable):
        await guard.spend("replay:new", 60, issued)
    new = sentinel_set.wait_for_failover(old)
    assert new is sentinel_set.replica

    # The same store object, no restart: it finds the promoted replica through the sentinel.
    await eventually(lambda: _answers(sentinel_store), what="the store answers after the failover")
    assert await guard.current() == before  # the replica carried the generation over
    assert await guard.spend("replay:spent", 60, issued) is False  # and the mark: still spent
    assert await guard.spend("replay:new", 60, issued) is True

    # A wiped store is still told apart: its generation is new, and older items are refused.
    with new.client() as client:
        client.flushall()
    assert await guard.spend("replay:other", 60, issued) is False
    assert guard.known is not None and guard.known.id != before.id


def _ready(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
            return response.status, json.loads(response.read())["checks"]["store"]
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())["checks"]["store"]


async def test_a_gateway_on_sentinel_is_not_ready_during_a_failover_and_ready_after(
    sentinel_set: RedisSentinelSet,
) -> None:
    with sentinel_set.primary.client() as client:
        backdate_generation(client, "fedgate:", time.time() - 3600)
    store = {
        "backend": "redis",
        "sentinel": {
            "addresses": [f"{h}:{p}" for h, p in sentinel_set.sentinels],
            "service": sentinel_set.service,
            "password": {"value": sentinel_set.password},
        },
        "operation_timeout": 0.5,
        "breaker_failures": 2,
        "breaker_cooldown": 0.2,
    }
    runner, port, app = await serve_app(config_from(_config(store)))
    url = f"http://127.0.0.1:{port}"
    loop = asyncio.get_running_loop()

    async def ready(expected: int) -> bool:
        return (await loop.run_in_executor(None, _ready, url))[0] == expected

    try:
        await eventually(lambda: ready(200), what="ready on the sentinel's primary")
        issued = time.time()
        assert await app[keys.REPLAY].spend("replay:x", 60, issued) is True
        old = sentinel_set.kill_primary()
        await eventually(lambda: ready(503), what="not ready while the primary is gone")
        with pytest.raises(ServiceUnavailable):
            await app[keys.REPLAY].spend("replay:y", 60, issued)  # refused, not allowed
        await loop.run_in_executor(None, sentinel_set.wait_for_failover, old)
        await eventually(lambda: ready(200), what="ready again on the promoted replica, no restart")
        assert await app[keys.REPLAY].spend("replay:y", 60, issued) is True
    finally:
        await runner.cleanup()
