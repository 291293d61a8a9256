"""Provider outage end to end, with a real Celery worker: checkout keeps taking orders, the breaker opens,
and once the provider is back the re-drive job gets every order paid, each charged exactly once."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from core.redis_pool import redis_connection
from orders.models import Order, OrderStatus
from payments.breaker import OPEN, CircuitBreaker
from payments.models import Payment
from payments.services import payment_capture
from payments.tasks import payment_capture_task, payments_reconcile_task
from tests.capacity.infra import ProviderSimulator, wait_until
from tests.conftest import order_payload
from tests.factories import ProductFactory, UserFactory

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]

ORDERS = 8
THRESHOLD = 3
ATTEMPTS = 3


def test_orders_wait_out_a_provider_outage_and_are_all_paid_exactly_once_after_it(
    provider: ProviderSimulator, breaker: CircuitBreaker, celery_worker: None, settings: Any
) -> None:
    settings.PAYMENT_REDRIVE_AFTER_S = 0  # the test does not wait a minute between re-drives
    alice = UserFactory.create(username="alice")
    product = ProductFactory.create(stock_on_hand=ORDERS)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(alice).access_token}")
    provider.control(outage=True)

    # Checkout during the outage: every order is accepted and waits in pending_payment.
    placed = [
        client.post(
            "/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY=str(uuid.uuid4())
        )
        for _ in range(ORDERS)
    ]
    assert [response.status_code for response in placed] == [201] * ORDERS
    order_ids = [response.json()["id"] for response in placed]

    # The worker tries each order; after THRESHOLD failed calls the breaker opens and the rest are refused
    # locally, without touching the provider.
    assert wait_until(lambda: Payment.objects.filter(order_id__in=order_ids, attempts__gte=1).count() == ORDERS)
    assert breaker.state() == OPEN
    assert provider.stats()["requests"] == THRESHOLD * ATTEMPTS
    assert set(Order.objects.filter(pk__in=order_ids).values_list("status", flat=True)) == {OrderStatus.PENDING_PAYMENT}

    # The provider comes back and the cool-down ends; the periodic job (run by the worker) re-drives.
    provider.control(outage=False)
    settings.PAYMENT_BREAKER_COOLDOWN_S = 0.2

    def all_paid() -> bool:
        payments_reconcile_task.delay()
        return wait_until(
            lambda: Order.objects.filter(pk__in=order_ids, status=OrderStatus.PAID).count() == ORDERS,
            timeout_s=3,
            every_s=0.2,
        )

    assert wait_until(all_paid, timeout_s=90, every_s=0)

    # Redelivered or duplicated tasks change nothing.
    for order_id in order_ids:
        payment_capture_task.delay(order_id)
    assert wait_until(lambda: redis_connection().llen("celery") == 0)
    assert {payment_capture(order_id=order_id) for order_id in order_ids} == {"skipped"}
    stats = provider.stats()
    assert stats["charges_per_key"] == {f"shop-order-{order_id}": 1 for order_id in order_ids}
    assert stats["refunds"] == 0
