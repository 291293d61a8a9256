"""The Django cache backend: Redis, where an outage is a cache miss instead of an exception (CACHES in
config/settings.py)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
import structlog
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache

logger = structlog.get_logger(__name__)


class ResilientRedisCache(RedisCache):
    """Django's Redis cache, except that an outage is a cache miss instead of an exception.

    Redis down: the catalog must still serve. A read answers `default` (a miss, so the caller falls back to
    the database); a write is dropped. Readiness (/readyz) pings Redis directly, so the outage is still seen.
    """

    def _tolerate(self, operation: str, fallback: Any, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except redis.RedisError as error:
            logger.warning("cache failed, treated as a miss", operation=operation, error=type(error).__name__)
            return fallback

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        return self._tolerate("get", default, lambda: super(ResilientRedisCache, self).get(key, default, version))

    def get_many(self, keys: Any, version: int | None = None) -> dict[Any, Any]:
        result: dict[Any, Any] = self._tolerate(
            "get_many", {}, lambda: super(ResilientRedisCache, self).get_many(keys, version)
        )
        return result

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        self._tolerate("set", None, lambda: super(ResilientRedisCache, self).set(key, value, timeout, version))

    def set_many(self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> list[Any]:
        failed: list[Any] = self._tolerate(
            "set_many", list(data), lambda: super(ResilientRedisCache, self).set_many(data, timeout, version)
        )
        return failed

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        added: bool = self._tolerate(
            "add", False, lambda: super(ResilientRedisCache, self).add(key, value, timeout, version)
        )
        return added

    def delete(self, key: Any, version: int | None = None) -> bool:
        deleted: bool = self._tolerate("delete", False, lambda: super(ResilientRedisCache, self).delete(key, version))
        return deleted

    def delete_many(self, keys: Any, version: int | None = None) -> None:
        self._tolerate("delete_many", None, lambda: super(ResilientRedisCache, self).delete_many(keys, version))

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        touched: bool = self._tolerate(
            "touch", False, lambda: super(ResilientRedisCache, self).touch(key, timeout, version)
        )
        return touched

    def has_key(self, key: Any, version: int | None = None) -> bool:
        found: bool = self._tolerate("has_key", False, lambda: super(ResilientRedisCache, self).has_key(key, version))
        return found
