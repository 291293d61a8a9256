"""Infrastructure failures (database down, query cancelled, lock timeout, Redis down) become 503/409, not 500."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import psycopg.errors
import redis
import structlog
from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache
from django.db import DatabaseError, InterfaceError, OperationalError
from redis.backoff import NoBackoff
from redis.retry import Retry

from core.errors import ApplicationError, Busy, ServiceUnavailable
from core.locking import busy, is_lock_contention

logger = structlog.get_logger(__name__)


def classify_database_error(exc: BaseException) -> ApplicationError | None:
    """Map a database exception to the refusal the client should see, or None when it is a real bug."""
    cause = exc.__cause__ or exc
    if is_lock_contention(exc):
        # Lock contention that escaped core.locking's wrapper: another request holds the rows; retry.
        return busy()
    if isinstance(cause, psycopg.errors.QueryCanceled):
        # Slow query: statement_timeout cancelled it; the worker is free again and the client retries later.
        return ServiceUnavailable("The request took too long and was cancelled. Try again shortly.", retry_after=5)
    if isinstance(cause, psycopg.errors.IdleInTransactionSessionTimeout | psycopg.errors.AdminShutdown):
        return ServiceUnavailable("The database connection was reset. Try again shortly.", retry_after=2)
    if isinstance(exc, OperationalError | InterfaceError) or isinstance(cause, psycopg.OperationalError):
        # Database or PgBouncer down: answer within the connect timeout, recover when it is back.
        return ServiceUnavailable("The database is unavailable. Try again shortly.", retry_after=5)
    if isinstance(exc, DatabaseError) and isinstance(cause, psycopg.errors.SerializationFailure):
        return Busy("A concurrent update got in the way. Try again.", retry_after=1)
    return None


# --- Redis ----------------------------------------------------------------------------------------------------


@functools.cache
def redis_client_for(url: str, timeout_s: float) -> redis.Redis:
    # Redis down: one attempt with a short timeout, never redis-py's default retry loop, so a dead Redis
    # costs a request milliseconds, not seconds.
    # Thread burst: a blocking pool makes the 51st concurrent caller wait (up to timeout_s) for a connection
    # instead of failing with MaxConnectionsError.
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=settings.REDIS_MAX_CONNECTIONS,
        timeout=timeout_s,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )
    return redis.Redis(connection_pool=pool)


def redis_connection() -> redis.Redis:
    """The process-wide Redis client for throttles and the circuit breaker (thread-safe connection pool)."""
    return redis_client_for(settings.REDIS_URL, settings.REDIS_TIMEOUT_S)


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
