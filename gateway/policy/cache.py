"""A small bounded, thread-safe LRU map for compiled policies."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Generic, TypeVar, final

__all__ = ["LRU"]

K = TypeVar("K")
V = TypeVar("V")


@final
class LRU(Generic[K, V]):
    """Least-recently-used map holding at most ``maxsize`` entries."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            value = self._data.get(key)
            if value is not None:
                self._data.move_to_end(key)
            return value

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
