"""Defect 1, "a declined card ends up paid": every path a charge answer can take decides on the charge's own
status, and a declined order ends payment_failed with its units back on the shelf, never captured.

The paths: the first call; a retry inside the client (the first attempt's answer was lost after the provider
declined); the task delivered again; the re-drive job; the reconciliation lookup. The provider is the simulator
over HTTP; its faults are asked for per call (payments/simulator.py), so each path is taken deterministically.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken
from zeal import zeal_ignore

import payments.services
import payments.tasks
from accounts.models import User
from orders.models import Order, OrderStatus
from payments.client import (
    DECLINED,
    SUCCEEDED,
    ChargeUndecided,
    ProviderDeclined,
    ProviderUnavailable,
    provider_charge,
    provider_charge_lookup,
)
from payments.models import Payment, PaymentStatus
from payments.services import payment_capture, payment_reconcile
from payments.tasks import payment_capture_task
from shop.models import Product
from tests.capacity.infra import ProviderSimulator, wait_until
from tests.conftest import order_payload
from tests.orders.support import place, stock_of

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("breaker")]

DECLINE_AND_LOSE_THE_ANSWER = [{"kind": "decline", "on": "charge"}, {"kind": "lose_answer", "on": "charge"}]


@pytest.fixture(autouse=True)
def _rereads_are_deliberate() -> Iterator[None]:
    """These tests read the same rows after each step on purpose; the API calls stay N+1-checked."""
    with zeal_ignore():
        yield


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The capture tasks the services send (after placing, when re-driving), recorded instead of brokered."""
    sent: list[int] = []
    monkeypatch.setattr(payments.tasks, "payment_capture_enqueue", sent.append)
    return sent


def assert_declined_and_released(order: Order, product: Product, provider: ProviderSimulator) -> None:
    """The decline is settled as a decline: payment_failed, units back, failed payment, nothing charged."""
    final = Order.objects.get(pk=order.pk)
    payment = Payment.objects.get(order=order)
    assert final.status == OrderStatus.PAYMENT_FAILED
    assert final.stock_released_at is not None
    assert stock_of(product) == 10
    assert payment.status == PaymentStatus.FAILED
    assert payment.provider_reference == ""
    stats = provider.stats()
    assert stats["charge_status_per_key"] == {payment.idempotency_key: "declined"}
    assert stats["charges_per_key"] == {payment.idempotency_key: 0}


# --- The simulator replays the original answer ---------------------------------------------------------------


@pytest.mark.parametrize(("decline_rate", "status", "outcome"), [(1.0, 402, "declined"), (0.0, 201, "succeeded")])
def test_a_repeated_key_gets_the_original_status_code_and_body(
    provider: ProviderSimulator, decline_rate: float, status: int, outcome: str
) -> None:
    import httpx

    provider.control(decline_rate=decline_rate)
    first = httpx.post(f"{provider.url}/v1/charges", json={"amount": "1.00"}, headers={"Idempotency-Key": "k"})
    provider.control(decline_rate=1.0 - decline_rate)  # the repeat would get the other outcome if it were new
    again = httpx.post(f"{provider.url}/v1/charges", json={"amount": "1.00"}, headers={"Idempotency-Key": "k"})

    assert (first.status_code, again.status_code) == (status, status)
    assert again.json() == first.json()
    assert first.json()["status"] == outcome
    assert provider.stats()["charges"] == 1


# --- The client decides on the charge's status ------------------------------------------------------------------


def _charge(key: str) -> Any:
    return provider_charge(idempotency_key=key, amount=Decimal("12.50"), currency="EUR", reference="SO-1")


def test_a_200_whose_body_says_declined_is_a_decline(provider: ProviderSimulator) -> None:
    provider.control(faults=[{"kind": "decline"}, {"kind": "ok_status"}])
    with pytest.raises(ProviderDeclined):
        _charge("shop-order-200-declined")
    assert provider.stats()["faults_applied"] == {"decline": 1, "ok_status": 1}


def test_an_unknown_status_is_not_a_success(provider: ProviderSimulator) -> None:
    provider.control(faults=[{"kind": "odd_status"}])
    with pytest.raises(ChargeUndecided):  # a ProviderUnavailable: not final, the task asks again later
        _charge("shop-order-processing")
    assert provider.stats()["charges"] == 0


def test_the_lookup_reports_a_declined_key_as_declined(provider: ProviderSimulator) -> None:
    provider.control(decline_rate=1.0)
    with pytest.raises(ProviderDeclined):
        _charge("shop-order-looked-up")
    charge = provider_charge_lookup(idempotency_key="shop-order-looked-up")
    assert charge is not None
    assert charge.status == DECLINED
    provider.control(decline_rate=0.0)
    _charge("shop-order-fine")
    assert provider_charge_lookup(idempotency_key="shop-order-fine").status == SUCCEEDED  # type: ignore[union-attr]


# --- Every path of a capture ---------------------------------------------------------------------------------------


def test_first_call_declined(provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]) -> None:
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "decline"}])

    assert payment_capture(order_id=order.pk) == "declined"

    assert_declined_and_released(order, product, provider)


def test_first_call_answered_200_with_a_declined_body(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]
) -> None:
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "decline"}, {"kind": "ok_status"}])

    assert payment_capture(order_id=order.pk) == "declined"

    assert_declined_and_released(order, product, provider)


def test_an_undecided_answer_leaves_the_order_waiting_not_paid(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]
) -> None:
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "odd_status"}])

    with pytest.raises(ProviderUnavailable):
        payment_capture(order_id=order.pk)

    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert Payment.objects.get(order=order).status == PaymentStatus.PENDING
    assert stock_of(product) == 8


def test_retry_inside_the_client_gets_the_replayed_decline(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]
) -> None:
    """The provider declines, the answer is lost, the client's retry (same key) gets the stored decline."""
    order = place(alice, (product, 2))
    provider.control(faults=DECLINE_AND_LOSE_THE_ANSWER)

    assert payment_capture(order_id=order.pk) == "declined"

    assert provider.stats()["requests"] == 2
    assert_declined_and_released(order, product, provider)


def test_the_tasks_own_retry_after_every_answer_was_lost(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]
) -> None:
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "decline"}, {"kind": "lose_answer", "calls": 3}])

    # Run eagerly, Celery runs the task's retry (autoretry_for=ProviderUnavailable) at once, in this call.
    assert payment_capture_task.apply(args=(order.pk,)).get() == "declined"

    assert provider.stats()["requests"] == 4  # three attempts whose answers were lost, then the replay
    assert_declined_and_released(order, product, provider)


def test_task_delivered_again_after_every_answer_was_lost(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]
) -> None:
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "decline"}, {"kind": "lose_answer", "calls": 3}])
    with pytest.raises(ProviderUnavailable):
        payment_capture(order_id=order.pk)  # the delivery whose worker then gave up on it
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT

    assert payment_capture_task.apply(args=(order.pk,)).get() == "declined"  # the message delivered again

    assert_declined_and_released(order, product, provider)


def test_worker_killed_after_the_provider_declined_then_the_task_runs_again(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "decline"}])

    class WorkerKilled(BaseException):
        pass

    def killed(**kwargs: Any) -> None:
        raise WorkerKilled

    with monkeypatch.context() as patch:
        patch.setattr(payments.services, "payment_settle_declined", killed)
        with pytest.raises(WorkerKilled):
            payment_capture(order_id=order.pk)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT

    assert payment_capture(order_id=order.pk) == "declined"  # acks_late: the message comes back

    assert_declined_and_released(order, product, provider)


def test_redrive_job_resends_it_and_the_replay_is_a_decline(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]
) -> None:
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "decline"}, {"kind": "lose_answer", "calls": 3}])
    with pytest.raises(ProviderUnavailable):
        payment_capture(order_id=order.pk)
    enqueued.clear()  # the task gave up: its retries ran out, or the message was lost

    later = timezone.now() + timedelta(seconds=django_settings.PAYMENT_REDRIVE_AFTER_S + 1)
    assert payment_reconcile(now=later).redriven == 1
    assert enqueued == [order.pk]
    assert payment_capture_task.apply(args=(order.pk,)).get() == "declined"

    assert_declined_and_released(order, product, provider)


def test_reconciliation_lookup_settles_a_decline_it_finds(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]
) -> None:
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "decline"}, {"kind": "lose_answer", "calls": 3}])
    with pytest.raises(ProviderUnavailable):
        payment_capture(order_id=order.pk)

    later = timezone.now() + timedelta(seconds=django_settings.PAYMENT_ABANDON_AFTER_S + 1)
    report = payment_reconcile(now=later)

    assert report.declined_at_provider == 1
    assert_declined_and_released(order, product, provider)


def test_reconciliation_leaves_an_order_whose_charge_is_undecided(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int]
) -> None:
    """A lookup whose charge status is neither success nor decline is no answer: wait, do not guess."""
    order = place(alice, (product, 2))
    provider.control(faults=[{"kind": "lose_answer", "calls": 3}])
    with pytest.raises(ProviderUnavailable):
        payment_capture(order_id=order.pk)  # charged, but the shop never heard
    provider.control(faults=[{"kind": "odd_status", "on": "lookup"}])  # the provider says "processing"

    later = timezone.now() + timedelta(seconds=django_settings.PAYMENT_ABANDON_AFTER_S + 1)
    report = payment_reconcile(now=later)

    assert report.undecided == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert stock_of(product) == 8


# --- The issue's reproduction -------------------------------------------------------------------------------------


def test_issue_reproduction_slow_declining_provider_then_healthy_ends_payment_failed(
    provider: ProviderSimulator, alice: User, product: Product, enqueued: list[int], settings: Any
) -> None:
    """`{"decline_rate": 1, "latency_ms": 6000}`, place an order, wait, `{"decline_rate": 0, "latency_ms": 0}`.

    Scaled to the test's client timeout (0.2 s): every attempt times out, the provider declined the first one.
    Before the fix the task's retry got the stored decline replayed as 200 and settled it as paid.
    """
    settings.PAYMENT_PROVIDER_TIMEOUT_S = 0.2
    provider.control(decline_rate=1.0, latency_ms=400)
    order = place(alice, (product, 2))
    with pytest.raises(ProviderUnavailable):
        payment_capture(order_id=order.pk)
    assert wait_until(lambda: provider.stats()["charges"] == 1, timeout_s=10)  # the provider did decline it
    provider.control(decline_rate=0.0, latency_ms=0)

    assert payment_capture(order_id=order.pk) == "declined"  # the task's retry

    assert_declined_and_released(order, product, provider)


def test_issue_reproduction_with_a_real_worker(
    provider: ProviderSimulator, alice: User, product: Product, celery_worker: None, settings: Any
) -> None:
    """The same, end to end: the API places the order, a real Celery worker runs and retries the capture."""
    settings.PAYMENT_PROVIDER_TIMEOUT_S = 0.2
    provider.control(decline_rate=1.0, latency_ms=400)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(alice).access_token}")
    placed = client.post("/api/v1/orders/", order_payload((product.pk, 2)), format="json", HTTP_IDEMPOTENCY_KEY="r")
    assert placed.status_code == 201
    order = Order.objects.get(pk=placed.json()["id"])
    assert wait_until(lambda: Payment.objects.filter(order=order, attempts__gte=1).exists(), timeout_s=30)
    assert wait_until(lambda: provider.stats()["charges"] == 1, timeout_s=30)
    provider.control(decline_rate=0.0, latency_ms=0)

    assert wait_until(lambda: Order.objects.get(pk=order.pk).is_settled, timeout_s=60)

    assert_declined_and_released(order, product, provider)
