"""The process-wide Redis client: one blocking connection pool with short timeouts and no retry loop.

Throttles (core/throttling.py), the circuit breaker (payments/breaker.py) and readiness (core/health.py) use it;
the Django cache has its own client (core/cache.py).
"""

from __future__ import annotations

import functools

import redis
from django.conf import settings
from redis.backoff import NoBackoff
from redis.retry import Retry


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
