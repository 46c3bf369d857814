"""Shared state behind one interface, :class:`Store`, with two backends.

:class:`MemoryStore` is the embedded default (one process, no server); :class:`RedisStore` serves
several workers and replicas. :func:`open_store` builds the one the configuration asks for.
One-time use goes through :class:`ReplayGuard`, which survives a reset of either.
"""

from __future__ import annotations

from gateway.config import StoreSettings
from gateway.errors import ConfigError
from gateway.store.base import Generation, Store
from gateway.store.breaker import CircuitBreaker
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore
from gateway.store.replay import ReplayGuard

__all__ = ["CircuitBreaker", "Generation", "MemoryStore", "RedisStore", "ReplayGuard", "Store", "open_store"]


def open_store(settings: StoreSettings) -> Store:
    """Build the store ``settings`` describe. Connections are made lazily, on first use.

    Raises :class:`~gateway.errors.ConfigError` naming ``store.url`` when the URL cannot be resolved
    or parsed; the message never contains the URL itself.
    """
    if settings.backend == "memory":
        return MemoryStore()
    try:
        url = settings.redis_url()
        breaker = CircuitBreaker(failures=settings.breaker_failures, cooldown=settings.breaker_cooldown)
        return RedisStore.from_url(
            url,
            prefix=settings.prefix,
            timeout=settings.operation_timeout,
            breaker=breaker,
            max_connections=settings.max_connections,
        )
    except ValueError as exc:
        raise ConfigError(f"store.url: {exc}") from None
