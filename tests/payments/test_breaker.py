"""The circuit breaker: its states, its atomic half-open probe, and what it does when Redis is gone."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import pytest

from core.redis_pool import redis_client_for, redis_connection
from payments.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from tests.capacity.infra import free_port, run_in_threads, wait_until


def test_closed_until_threshold_consecutive_failures_then_open(breaker: CircuitBreaker) -> None:
    assert breaker.before_call().allowed
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()  # a success in between resets the count
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state() == CLOSED
    assert breaker.record_failure() == OPEN

    refused = breaker.before_call()
    assert not refused.allowed
    assert refused.state == OPEN
    assert 0 < refused.retry_after_s <= 60


def test_after_the_cool_down_one_probe_goes_and_its_outcome_decides(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure()
    breaker.cooldown_ms = 0  # the cool-down is over (instead of sleeping through it)

    probe = breaker.before_call()
    assert probe.allowed and probe.state == HALF_OPEN
    assert not breaker.before_call().allowed  # only one probe at a time
    breaker.record_failure()  # the probe failed: open again
    assert breaker.state() == OPEN

    assert breaker.before_call().allowed  # next probe after the (zero) cool-down
    breaker.record_success()
    assert breaker.state() == CLOSED
    assert all(breaker.before_call().allowed for _ in range(5))


def test_a_late_success_from_before_the_opening_does_not_close_the_circuit(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure()
    assert breaker.record_success() == OPEN
    assert not breaker.before_call().allowed


def test_a_dead_probe_is_replaced_after_its_lease(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure()
    breaker.cooldown_ms = 0
    breaker.probe_lease_ms = 200
    assert breaker.before_call().allowed  # this probe's worker "dies": it never reports back
    assert not breaker.before_call().allowed
    assert wait_until(lambda: breaker.before_call().allowed, timeout_s=10, every_s=0.05)


def test_many_workers_after_the_cool_down_let_exactly_one_probe_through(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure()
    breaker.cooldown_ms = 0
    allowed = run_in_threads(30, lambda _: breaker.before_call().allowed)
    assert allowed.count(True) == 1


def _naive_before_call(breaker: CircuitBreaker) -> bool:
    """The race the Lua script prevents: read the state, decide, write the state, in separate round trips."""
    client = redis_connection()
    raw = client.hget(breaker.key, "state") or b"closed"
    state = raw.decode() if isinstance(raw, bytes) else str(raw)
    if state == OPEN:
        time.sleep(0.005)  # the round trip between reading "open, cool-down over" and writing "half_open"
        client.hset(breaker.key, "state", HALF_OPEN)
        return True
    return state == CLOSED


def test_twin_a_read_then_write_breaker_lets_several_probes_hit_a_sick_provider(breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure()
    allowed = run_in_threads(30, lambda _: _naive_before_call(breaker))
    assert allowed.count(True) > 1


def test_redis_down_lets_calls_through_and_never_raises() -> None:
    unreachable = redis_client_for(f"redis://127.0.0.1:{free_port()}/0", 0.2)
    breaker = CircuitBreaker("nowhere", threshold=1, cooldown_s=60, probe_lease_s=5, client=unreachable)
    assert breaker.before_call().allowed
    assert breaker.record_failure() == "unknown"
    assert breaker.before_call().allowed


@pytest.mark.parametrize("threshold, expected_requests", [(3, 9), (1000, 24)])
def test_an_open_breaker_sheds_load_from_a_provider_that_is_down(
    breaker: CircuitBreaker, provider: Any, settings: Any, threshold: int, expected_requests: int
) -> None:
    """8 charges while the provider is down: with the breaker, 3 calls x 3 attempts reach it and the rest are
    refused locally; the twin (a threshold never reached) sends every attempt of every call."""
    from payments.client import ProviderUnavailable, provider_charge

    settings.PAYMENT_BREAKER_THRESHOLD = threshold
    provider.control(outage=True)
    for number in range(8):
        with pytest.raises(ProviderUnavailable):
            provider_charge(idempotency_key=f"k{number}", amount=Decimal("1.00"), currency="EUR", reference="x")
    assert provider.stats()["requests"] == expected_requests
