"""Shared state behind one interface, :class:`Store`, with two backends.

:class:`MemoryStore` is the embedded default (one process, no server); :class:`RedisStore` serves
several workers and replicas. :func:`open_store` builds the one the configuration asks for.
One-time use goes through :class:`ReplayGuard`, which survives a reset of either.

:class:`RedisStore` (and with it redis-py, which also loads OpenTelemetry's metrics SDK: about
10 MiB of a server's memory) is imported only when it is asked for: by :func:`open_store` for the
``redis`` backend, at start-up, or by name (``from gateway.store import RedisStore``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.config import SecretRef, StoreSettings
from gateway.errors import ConfigError
from gateway.requires import require
from gateway.store.base import Generation, Store
from gateway.store.breaker import CircuitBreaker
from gateway.store.memory import MemoryStore
from gateway.store.replay import ReplayGuard

if TYPE_CHECKING:
    from gateway.store.redis import RedisStore

__all__ = ["CircuitBreaker", "Generation", "MemoryStore", "RedisStore", "ReplayGuard", "Store", "open_store"]


def open_store(settings: StoreSettings) -> Store:
    """Build the store ``settings`` describe. Connections are made lazily, on first use.

    Raises :class:`~gateway.errors.ConfigError` naming the key (``store.url``,
    ``store.sentinel.password``, ...) when a value cannot be resolved or parsed; the message never
    contains the URL or secret itself.
    """
    if settings.backend == "memory":
        return MemoryStore()
    require("redis.asyncio", feature="store.backend: redis", package="redis")
    from gateway.store.redis import RedisStore

    common: dict[str, Any] = {
        "prefix": settings.prefix,
        "timeout": settings.operation_timeout,
        "breaker": CircuitBreaker(failures=settings.breaker_failures, cooldown=settings.breaker_cooldown),
        "max_connections": settings.max_connections,
    }
    if settings.sentinel is not None:
        sentinel = settings.sentinel
        return RedisStore.from_sentinel(
            [_host_port(a) for a in sentinel.addresses],
            sentinel.service,
            db=sentinel.db,
            username=sentinel.username,
            password=_secret(sentinel.password, "store.sentinel.password"),
            sentinel_password=_secret(sentinel.sentinel_password, "store.sentinel.sentinel_password"),
            **common,
        )
    if settings.cluster is not None:
        cluster = settings.cluster
        return RedisStore.from_cluster(
            [_host_port(a) for a in cluster.nodes],
            username=cluster.username,
            password=_secret(cluster.password, "store.cluster.password"),
            **common,
        )
    try:
        return RedisStore.from_url(settings.redis_url(), **common)
    except ValueError as exc:
        raise ConfigError(f"store.url: {exc}") from None


def __getattr__(name: str) -> object:
    if name == "RedisStore":
        from gateway.store.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")  # validated by the settings
    return host.strip("[]"), int(port)


def _secret(ref: SecretRef | None, key: str) -> str | None:
    if ref is None:
        return None
    try:
        return ref.resolve().get_secret_value()
    except ValueError as exc:
        raise ConfigError(f"{key}: {exc}") from None
