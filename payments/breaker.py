"""A circuit breaker whose state lives in Redis, so every web and Celery worker sees the same circuit.

States (docs/patterns/03-capacity.md has the diagram):

    closed     calls go through; each failed call adds one to a counter, a success resets it.
               `threshold` consecutive failures open the circuit.
    open       calls are refused at once (no timeout paid, no load on a provider that is down) until
               `cooldown_s` has passed since the circuit opened.
    half_open  after the cool-down exactly ONE caller is let through as a probe. Its success closes the
               circuit; its failure opens it again for another cool-down. If the probe's worker dies, its
               lease (`probe_lease_s`) runs out and the next caller becomes the probe.

Every transition is one Lua script, so it is atomic across processes: two workers can never both win the
half-open probe, and a counter is never read in one round trip and written in another. Time comes from
the Redis server (`TIME`), so workers with skewed clocks agree on when the cool-down ends.

If Redis itself is unreachable the breaker fails OPEN FOR CALLS (it lets calls through): every call still
has its own timeout and retry budget, and refusing all payments because the breaker's notebook is missing
would turn a Redis outage into a payment outage.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
import structlog
from django.conf import settings

from core.redis_pool import redis_connection

logger = structlog.get_logger(__name__)

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half_open"

# KEYS[1] = the breaker hash. ARGV = cooldown_ms, probe_lease_ms.
# Returns {allowed (0/1), state, wait_ms}.
_BEFORE_CALL = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then
  return {1, 'closed', 0}
end
if state == 'open' then
  local opened_at = tonumber(redis.call('HGET', KEYS[1], 'opened_at') or '0')
  local wait = opened_at + tonumber(ARGV[1]) - now
  if wait > 0 then
    return {0, 'open', wait}
  end
  -- Cool-down over: this caller, and only this caller, becomes the probe.
  redis.call('HSET', KEYS[1], 'state', 'half_open', 'probe_until', now + tonumber(ARGV[2]))
  return {1, 'half_open', 0}
end
-- half_open: a probe is out. Another caller may probe only if that probe's lease ran out (its worker died).
local probe_until = tonumber(redis.call('HGET', KEYS[1], 'probe_until') or '0')
if now >= probe_until then
  redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[2]))
  return {1, 'half_open', 0}
end
return {0, 'half_open', probe_until - now}
"""

# KEYS[1] = the breaker hash. ARGV = threshold. Returns the state after the failure.
_RECORD_FAILURE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'half_open' then
  -- The probe failed: the provider is still down; wait another cool-down.
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'failures', 0)
  return 'open'
end
if state == 'open' then
  return 'open'  -- a call that started before the circuit opened; it changes nothing
end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('PEXPIRE', KEYS[1], 86400000)  -- an untouched breaker is forgotten after a day (reads as closed)
if failures >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'opened_at', now, 'failures', 0)
  return 'open'
end
return 'closed'
"""

# KEYS[1] = the breaker hash. Returns the state after the success.
_RECORD_SUCCESS = """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'open' then
  return 'open'  -- a call that started before the circuit opened; only the probe may close it
end
redis.call('HSET', KEYS[1], 'state', 'closed', 'failures', 0)
redis.call('HDEL', KEYS[1], 'opened_at', 'probe_until')
return 'closed'
"""


@dataclass(frozen=True)
class BreakerDecision:
    allowed: bool
    state: str
    retry_after_s: float = 0.0


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        *,
        threshold: int,
        cooldown_s: float,
        probe_lease_s: float,
        client: redis.Redis | None = None,
    ) -> None:
        self.key = f"breaker:{name}"
        self.threshold = threshold
        self.cooldown_ms = int(cooldown_s * 1000)
        self.probe_lease_ms = int(probe_lease_s * 1000)
        self._client = client

    @property
    def client(self) -> redis.Redis:
        return self._client or redis_connection()

    def _run(self, script: str, *args: Any) -> Any:
        return self.client.eval(script, 1, self.key, *args)

    def before_call(self) -> BreakerDecision:
        """Ask for permission to call. Open circuit: refused at once, with how long until the next probe."""
        try:
            allowed, state, wait_ms = self._run(_BEFORE_CALL, self.cooldown_ms, self.probe_lease_ms)
        except redis.RedisError as error:
            # Redis down: let the call through; its own timeout and retries still bound the damage.
            logger.warning(
                "circuit breaker unreadable, allowing the call", breaker=self.key, error=type(error).__name__
            )
            return BreakerDecision(allowed=True, state="unknown")
        return BreakerDecision(allowed=bool(allowed), state=_text(state), retry_after_s=int(wait_ms) / 1000)

    def record_success(self) -> str:
        return self._record(_RECORD_SUCCESS)

    def record_failure(self) -> str:
        state = self._record(_RECORD_FAILURE, self.threshold)
        if state == OPEN:
            logger.warning("circuit breaker is open", breaker=self.key)
        return state

    def _record(self, script: str, *args: Any) -> str:
        try:
            return _text(self._run(script, *args))
        except redis.RedisError as error:
            logger.warning("circuit breaker not updated", breaker=self.key, error=type(error).__name__)
            return "unknown"

    def state(self) -> str:
        """The stored state, for health pages, the re-drive job and tests. An elapsed cool-down still reads open."""
        try:
            raw = self.client.hget(self.key, "state")
        except redis.RedisError:
            return "unknown"
        return _text(raw) if raw else CLOSED

    def cooldown_elapsed(self) -> bool:
        """True unless the circuit is open and still cooling down (a half-open probe would be allowed)."""
        try:
            state, opened_at = self.client.hmget(self.key, ["state", "opened_at"])
            if state is None or _text(state) != OPEN:
                return True
            seconds, micros = self.client.time()
        except redis.RedisError:
            return True
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        return now_ms >= int(opened_at or 0) + self.cooldown_ms

    def reset(self) -> None:
        self.client.delete(self.key)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def provider_breaker() -> CircuitBreaker:
    """The breaker in front of the payment provider, configured from settings (read on every call)."""
    return CircuitBreaker(
        settings.PAYMENT_BREAKER_NAME,
        threshold=settings.PAYMENT_BREAKER_THRESHOLD,
        cooldown_s=settings.PAYMENT_BREAKER_COOLDOWN_S,
        probe_lease_s=settings.PAYMENT_BREAKER_PROBE_LEASE_S,
    )
