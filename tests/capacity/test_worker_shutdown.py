"""SIGTERM warm-shuts a Celery worker: the payment it is charging finishes, is recorded and acknowledged
before the worker exits. The twin kills the worker cold in the same spot: the order is left pending, and with
late acks the task's message is still held in Redis (unacknowledged), so it is redelivered, not lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings

from orders.models import Order, OrderStatus
from orders.placement import order_place
from orders.ports import payment_port
from orders.services import LineRequest, ShippingAddress
from payments.tasks import payment_capture_task
from tests.capacity.infra import PrivateRedis, ProviderSimulator, wait_until
from tests.conftest import DEFAULT_ADDRESS
from tests.factories import ProductFactory, UserFactory

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_LATENCY_MS = 3000  # long enough to signal the worker while it waits for the provider


@pytest.fixture
def broker(private_redis: PrivateRedis) -> PrivateRedis:
    """The worker's own broker (tests/capacity/conftest.py): its unacknowledged messages are this test's alone."""
    return private_redis


@pytest.fixture
def slow_provider() -> Iterator[ProviderSimulator]:
    provider = ProviderSimulator()
    provider.reset()  # the simulator's state is per process: forget earlier tests' requests and charges
    provider.control(latency_ms=PROVIDER_LATENCY_MS)
    yield provider
    provider.close()


def _start_worker(broker: PrivateRedis, provider: ProviderSimulator, log: Any) -> subprocess.Popen[bytes]:
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_ENV": "test",
        "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        "REDIS_URL": broker.url(),
        "CELERY_BROKER_URL": broker.url(),
        "PAYMENT_PROVIDER_URL": provider.url,
        "PAYMENT_PROVIDER_TIMEOUT_S": "20",  # the provider is slow on purpose; do not time out and retry
        "PAYMENT_BREAKER_NAME": settings.PAYMENT_BREAKER_NAME,
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--concurrency=1", "--pool=prefork"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _place_order_and_send_capture(broker: PrivateRedis, monkeypatch: pytest.MonkeyPatch) -> Order:
    # The order's own after-commit nudge would go to the shared test broker; this test sends it to its own.
    monkeypatch.setattr(payment_port, "capture_enqueue", lambda order_id: None)
    order = order_place(
        customer=UserFactory.create(username="alice"),
        lines=[LineRequest(product_id=ProductFactory.create(stock_on_hand=5).pk, quantity=1)],
        shipping_address=ShippingAddress(**DEFAULT_ADDRESS),
        idempotency_key="shutdown",
    ).order
    from config.celery import app

    with app.connection_for_write(broker.url()) as connection:
        payment_capture_task.apply_async((order.pk,), connection=connection)  # type: ignore[call-arg]
    return order


def _unacknowledged(broker: PrivateRedis) -> int:
    return int(redis.Redis(port=broker.port).hlen("unacked"))


def _run_until_charging(
    broker: PrivateRedis, provider: ProviderSimulator, monkeypatch: pytest.MonkeyPatch, log: Any
) -> tuple[subprocess.Popen[bytes], Order]:
    order = _place_order_and_send_capture(broker, monkeypatch)
    worker = _start_worker(broker, provider, log)
    # In flight: the worker holds the task (late ack) and is waiting for the slow provider's answer.
    assert wait_until(lambda: provider.stats()["requests"] >= 1, timeout_s=120), Path(log.name).read_text()
    assert _unacknowledged(broker) == 1
    return worker, order


def test_sigterm_lets_the_payment_in_flight_finish(broker, slow_provider, monkeypatch):
    with tempfile.NamedTemporaryFile("w+b", suffix=".log") as log:
        worker, order = _run_until_charging(broker, slow_provider, monkeypatch, log)
        worker.send_signal(signal.SIGTERM)  # what `make run`'s Ctrl-C, systemd and Kubernetes send
        try:
            exit_code = worker.wait(timeout=60)
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)
        assert exit_code == 0, Path(log.name).read_text()[-3000:]
    order.refresh_from_db()
    assert order.status == OrderStatus.PAID
    assert slow_provider.stats()["charges_per_key"] == {f"shop-order-{order.pk}": 1}
    assert _unacknowledged(broker) == 0  # acknowledged after it ran, not before


def test_twin_a_cold_kill_leaves_the_payment_undone_but_its_message_held(broker, slow_provider, monkeypatch):
    with tempfile.NamedTemporaryFile("w+b", suffix=".log") as log:
        worker, order = _run_until_charging(broker, slow_provider, monkeypatch, log)
        os.killpg(worker.pid, signal.SIGKILL)  # no warm shutdown: the worker and its child die mid-task
        worker.wait(timeout=30)
    order.refresh_from_db()
    assert order.status == OrderStatus.PENDING_PAYMENT  # the work in flight did not finish ...
    assert _unacknowledged(broker) == 1  # ... but late acks kept the message: it comes back, it is not lost
