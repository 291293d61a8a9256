"""The provider client: timeouts, retries only where repeating is safe, backoff with jitter."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from payments.breaker import CircuitBreaker
from payments.client import (
    CircuitOpen,
    ProviderDeclined,
    ProviderUnavailable,
    backoff_delay,
    provider_charge,
    provider_charge_lookup,
    provider_request,
)
from tests.capacity.infra import ProviderSimulator

pytestmark = pytest.mark.usefixtures("breaker")


def _charge(key: str) -> Any:
    return provider_charge(idempotency_key=key, amount=Decimal("12.50"), currency="EUR", reference="SO-1")


def test_backoff_is_exponential_with_full_jitter_and_a_cap(settings: Any) -> None:
    settings.PAYMENT_PROVIDER_RETRY_BASE_S = 0.1
    settings.PAYMENT_PROVIDER_RETRY_CAP_S = 1.0
    for attempt, ceiling in [(1, 0.2), (2, 0.4), (3, 0.8), (6, 1.0)]:
        delays = [backoff_delay(attempt) for _ in range(200)]
        assert all(0 <= delay <= ceiling for delay in delays)
        assert len(set(delays)) > 100  # jitter: no two workers wait the same


def test_a_charge_that_keeps_failing_is_tried_max_attempts_times_then_reported(
    provider: ProviderSimulator, breaker: CircuitBreaker
) -> None:
    provider.control(error_rate=1.0)
    with pytest.raises(ProviderUnavailable):
        _charge("shop-order-1")
    assert provider.stats()["requests"] == 3
    assert provider.stats()["charges"] == 0


def test_a_post_without_an_idempotency_key_is_never_retried(provider: ProviderSimulator) -> None:
    provider.control(error_rate=1.0)
    with pytest.raises(ProviderUnavailable):
        provider_request("POST", "/v1/charges", body={"amount": "1.00"})
    assert provider.stats()["requests"] == 1


def test_a_timed_out_charge_retried_with_the_same_key_is_charged_once(
    provider: ProviderSimulator, settings: Any
) -> None:
    """The provider charges after the client gave up; the retries carry the same key, so no second charge."""
    settings.PAYMENT_PROVIDER_TIMEOUT_S = 0.2
    provider.control(latency_ms=400)
    with pytest.raises(ProviderUnavailable):
        _charge("shop-order-2")
    provider.control(latency_ms=0)
    charge = _charge("shop-order-2")
    stats = provider.stats()
    assert stats["charges_per_key"] == {"shop-order-2": 1}
    assert provider_charge_lookup(idempotency_key="shop-order-2") == charge


def test_a_decline_is_final_and_not_retried(provider: ProviderSimulator) -> None:
    provider.control(decline_rate=1.0)
    with pytest.raises(ProviderDeclined):
        _charge("shop-order-3")
    assert provider.stats()["requests"] == 1


def test_an_open_circuit_refuses_without_calling(provider: ProviderSimulator, breaker: CircuitBreaker) -> None:
    for _ in range(3):
        breaker.record_failure()
    with pytest.raises(CircuitOpen) as refused:
        _charge("shop-order-4")
    assert refused.value.retry_after_s > 0
    assert provider.stats()["requests"] == 0


def test_lookup_answers_none_for_a_key_that_never_charged(provider: ProviderSimulator) -> None:
    assert provider_charge_lookup(idempotency_key="never-used") is None
