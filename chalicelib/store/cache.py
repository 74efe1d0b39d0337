"""A tiny per-process TTL cache for read-mostly configuration on the webhook hot path."""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


_caches: list[TTLCache[Any, Any]] = []


def forget_configuration() -> None:
    """Drop every cached configuration in this process (called when configuration changes).

    Other processes (warm Lambdas) see the change when their entries expire.
    """
    for cache in _caches:
        cache.clear()


class TTLCache(Generic[K, V]):
    """Maps keys to values for `ttl_seconds`; bounded so a flood of unknown keys cannot grow it."""

    def __init__(self, ttl_seconds: float, max_entries: int = 10_000) -> None:
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._items: dict[K, tuple[float, V]] = {}
        _caches.append(self)

    def get(self, key: K) -> tuple[bool, V | None]:
        entry = self._items.get(key)
        if entry is None:
            return False, None
        stored_at, value = entry
        if time.monotonic() - stored_at > self.ttl_seconds:
            self._items.pop(key, None)
            return False, None
        return True, value

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self.max_entries:
            self._items.clear()
        self._items[key] = (time.monotonic(), value)

    def invalidate(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
