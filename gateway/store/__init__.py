"""Shared state behind one interface, :class:`Store`, with two backends.

:class:`MemoryStore` is the embedded default (one process, no server); :class:`RedisStore` serves
several workers and replicas. :func:`open_store` builds the one the configuration asks for.
"""

from __future__ import annotations

from gateway.config import StoreSettings
from gateway.errors import ConfigError
from gateway.store.base import Store
from gateway.store.memory import MemoryStore
from gateway.store.redis import RedisStore

__all__ = ["MemoryStore", "RedisStore", "Store", "open_store"]


def open_store(settings: StoreSettings) -> Store:
    """Build the store ``settings`` describe. Connections are made lazily, on first use.

    Raises :class:`~gateway.errors.ConfigError` naming ``store.url`` when the URL cannot be resolved
    or parsed; the message never contains the URL itself.
    """
    if settings.backend == "memory":
        return MemoryStore()
    try:
        url = settings.redis_url()
        return RedisStore.from_url(url, prefix=settings.prefix)
    except ValueError as exc:
        raise ConfigError(f"store.url: {exc}") from None
