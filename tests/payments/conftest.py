"""Fixtures for payment tests: the provider simulator, an isolated circuit breaker, a real Celery worker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from payments.breaker import CircuitBreaker, provider_breaker
from shop.models import Product
from tests.capacity.infra import ProviderSimulator
from tests.factories import ProductFactory


@pytest.fixture(scope="session")
def provider_server() -> Iterator[ProviderSimulator]:
    server = ProviderSimulator()
    yield server
    server.close()


@pytest.fixture
def provider(provider_server: ProviderSimulator, settings: Any) -> ProviderSimulator:
    """The simulator, reset, with the shop pointed at it and fast retries (tests do not wait for backoff)."""
    provider_server.reset()
    settings.PAYMENT_PROVIDER_URL = provider_server.url
    settings.PAYMENT_PROVIDER_TIMEOUT_S = 2.0
    settings.PAYMENT_PROVIDER_RETRY_BASE_S = 0.01
    settings.PAYMENT_PROVIDER_RETRY_CAP_S = 0.05
    return provider_server


@pytest.fixture
def breaker(settings: Any) -> Iterator[CircuitBreaker]:
    """A breaker of its own for each test (its Redis key is unique), so no state leaks between tests."""
    settings.PAYMENT_BREAKER_NAME = f"test-{uuid.uuid4().hex[:12]}"
    settings.PAYMENT_BREAKER_THRESHOLD = 3
    settings.PAYMENT_BREAKER_COOLDOWN_S = 60.0
    settings.PAYMENT_BREAKER_PROBE_LEASE_S = 10.0
    circuit = provider_breaker()
    yield circuit
    circuit.reset()


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[None]:
    """A real Celery worker (celery.contrib.testing) consuming from this run's Redis, in a thread.

    It depends on transactional_db so it stops before the database is flushed.
    """
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    app.control.purge()  # tasks left by other tests (orders whose rows are gone) are not this test's business
    with start_worker(app, pool="solo", concurrency=1, perform_ping_check=False, shutdown_timeout=30):
        yield


@pytest.fixture
def product() -> Product:
    """Ten on the shelf: each test's order takes two."""
    return ProductFactory.create(stock_on_hand=10)
