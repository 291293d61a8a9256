"""Capture is idempotent, and the reconciliation job repairs what crashes and outages leave behind."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils import timezone

import payments.services
from accounts.models import User
from orders.models import Order, OrderStatus
from orders.placement import order_place
from orders.services import LineRequest, ShippingAddress, order_cancel
from payments.breaker import CircuitBreaker, provider_breaker
from payments.client import ProviderDeclined, provider_charge
from payments.models import Payment, PaymentStatus
from payments.services import payment_capture, payment_reconcile
from shop.models import Product
from tests.capacity.infra import ProviderSimulator, run_in_threads, wait_until
from tests.conftest import DEFAULT_ADDRESS

pytestmark = pytest.mark.django_db(transaction=True)


def _place(customer: User, product: Product, key: str) -> Order:
    return order_place(
        customer=customer,
        lines=[LineRequest(product_id=product.pk, quantity=2)],
        shipping_address=ShippingAddress(**DEFAULT_ADDRESS),
        idempotency_key=key,
    ).order


def _later(seconds: float) -> Any:
    return timezone.now() + timedelta(seconds=seconds + 1)


def test_a_duplicated_capture_charges_once_and_never_refunds_a_paid_order(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product
) -> None:
    order = _place(alice, product, "dup")
    outcomes = run_in_threads(4, lambda _: payment_capture(order_id=order.pk))
    assert "captured" in outcomes
    assert set(outcomes) <= {"captured", "already_captured", "skipped"}
    assert provider.stats()["charges_per_key"] == {f"shop-order-{order.pk}": 1}
    assert provider.stats()["refunds"] == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert Payment.objects.get(order=order).status == PaymentStatus.CAPTURED
    assert payment_capture(order_id=order.pk) == "skipped"  # a redelivered task, later


def test_a_charge_that_lands_after_a_cancel_is_refunded(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product
) -> None:
    from payments.services import payment_settle_charge

    order = _place(alice, product, "late")
    payment = Payment.objects.get(order=order)
    charge = provider_charge(
        idempotency_key=payment.idempotency_key, amount=payment.amount, currency="EUR", reference=""
    )
    order_cancel(order=order)  # the customer cancels while the charge is on its way back
    assert payment_settle_charge(payment=payment, charge_id=charge.charge_id) == "refunded_after_cancel"
    assert Payment.objects.get(order=order).status == PaymentStatus.REFUNDED
    assert provider.stats()["refunds"] == 1
    assert Product.objects.get(pk=product.pk).stock_on_hand == 10  # returned once, by the cancel


def test_redrive_sends_stuck_orders_again_unless_the_breaker_holds_them(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product, settings: Any
) -> None:
    for key in ("a", "b", "c"):
        _place(alice, product, key)
    later = _later(django_settings.PAYMENT_REDRIVE_AFTER_S)
    assert payment_reconcile(now=timezone.now()).redriven == 0  # not stuck yet

    for _ in range(3):
        breaker.record_failure()
    held = payment_reconcile(now=later)
    assert (held.redriven, held.redrive_held_by_breaker) == (0, 3)

    settings.PAYMENT_BREAKER_COOLDOWN_S = 0.001  # cool-down over: half-open, one order goes first as the probe
    probing = payment_reconcile(now=later)
    assert (probing.redriven, probing.redrive_held_by_breaker) == (1, 2)

    # The probe's task runs and succeeds: the circuit closes, and the next run sends everything.
    probe = provider_breaker()
    assert probe.before_call().allowed
    probe.record_success()
    assert payment_reconcile(now=_later(2 * django_settings.PAYMENT_REDRIVE_AFTER_S)).redriven == 3


def test_an_abandoned_order_that_never_charged_is_cancelled_and_its_stock_released(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product
) -> None:
    order = _place(alice, product, "old")
    assert Product.objects.get(pk=product.pk).stock_on_hand == 8

    report = payment_reconcile(now=_later(django_settings.PAYMENT_ABANDON_AFTER_S))

    assert report.abandoned == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    assert Payment.objects.get(order=order).status == PaymentStatus.FAILED
    assert Product.objects.get(pk=product.pk).stock_on_hand == 10


def test_an_abandoned_order_the_provider_did_charge_is_settled_as_paid(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product
) -> None:
    order = _place(alice, product, "charged-but-unknown")
    payment = Payment.objects.get(order=order)
    # The charge went through, but its answer was lost (a timeout) and the task gave up.
    provider_charge(idempotency_key=payment.idempotency_key, amount=payment.amount, currency="EUR", reference="")

    report = payment_reconcile(now=_later(django_settings.PAYMENT_ABANDON_AFTER_S))

    assert report.settled_from_provider == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID
    assert Product.objects.get(pk=product.pk).stock_on_hand == 8  # sold, not released
    assert provider.stats()["charges_per_key"] == {payment.idempotency_key: 1}


@pytest.mark.parametrize("compare_and_set", [True, False], ids=["fixed", "twin_unconditional_update"])
def test_a_capture_that_starts_during_the_abandon_lookup_never_ends_charged_and_failed(
    provider: ProviderSimulator,
    breaker: CircuitBreaker,
    alice: User,
    product: Product,
    monkeypatch: pytest.MonkeyPatch,
    compare_and_set: bool,
) -> None:
    """Found by `make fuzz` (tests/lifecycle): the job asks the provider ("no charge"), a re-driven capture then
    stamps the payment and charges, its worker dies before settling, and the job marks the payment failed.
    Money taken, payment failed, and nothing ever looks at a failed payment again. The job's update is a
    compare-and-set on the attempt stamp it looked at; the twin drops that condition and shows the defect."""
    order = _place(alice, product, "charged-during-the-lookup")
    payment = Payment.objects.get(order=order)
    real_lookup = payments.services.provider_charge_lookup

    def lookup_then_an_attempt_charges(*, idempotency_key: str) -> Any:
        answer = real_lookup(idempotency_key=idempotency_key)  # nothing charged yet
        monkeypatch.setattr(payments.services, "provider_charge_lookup", real_lookup)  # once
        # A capture starts now: it stamps its attempt (as payment_capture does) and charges; its worker dies
        # before it records the charge.
        Payment.objects.filter(pk=payment.pk).update(updated_at=timezone.now())
        provider_charge(idempotency_key=idempotency_key, amount=payment.amount, currency="EUR", reference="")
        if not compare_and_set:
            Payment.objects.filter(pk=payment.pk).update(updated_at=payment.updated_at)  # the stamp unseen
        return answer

    monkeypatch.setattr(payments.services, "provider_charge_lookup", lookup_then_an_attempt_charges)
    payment_reconcile(now=_later(django_settings.PAYMENT_ABANDON_AFTER_S))

    charged = provider.stats()["charges_per_key"] == {payment.idempotency_key: 1}
    status = Payment.objects.get(pk=payment.pk).status
    assert charged
    if compare_and_set:
        # Left pending on the cancelled order, the job's next step asked the provider again: recorded, refunded.
        assert status in {PaymentStatus.CAPTURED, PaymentStatus.REFUNDED}
        assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    else:
        assert status == PaymentStatus.FAILED  # the defect: charged at the provider, failed in the shop


def test_an_abandoned_order_is_left_alone_while_the_provider_cannot_answer(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product
) -> None:
    order = _place(alice, product, "unknown")
    provider.control(outage=True)

    report = payment_reconcile(now=_later(django_settings.PAYMENT_ABANDON_AFTER_S))

    assert report.undecided == 1
    assert report.abandoned == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    assert Product.objects.get(pk=product.pk).stock_on_hand == 8


def test_orphans_are_repaired_and_counted(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product
) -> None:
    without_payment = _place(alice, product, "no-payment-row")
    Payment.objects.filter(order=without_payment).delete()  # what a hand-written insert could leave
    captured_but_cancelled = _place(alice, product, "lost-refund")
    Payment.objects.filter(order=captured_but_cancelled).update(status=PaymentStatus.CAPTURED)
    # What a cancel whose refund task was lost leaves: cancelled (its stock back), the money still captured.
    Order.objects.filter(pk=captured_but_cancelled.pk).update(
        status=OrderStatus.CANCELLED, stock_released_at=timezone.now()
    )

    report = payment_reconcile()

    assert report.payments_created == 1
    assert Payment.objects.get(order=without_payment).status == PaymentStatus.PENDING
    assert report.refunds_enqueued == 1
    assert payment_reconcile().payments_created == 0  # idempotent: nothing left to create


def test_a_refund_the_provider_refuses_during_reconciliation_does_not_end_the_run(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product, monkeypatch: Any
) -> None:
    """Found by the lifecycle model: the job finds a charge for an old order, the customer cancels meanwhile,
    and the refund meets a provider error. The run used to die there, leaving the rest of its batch."""
    import payments.tasks

    refunds: list[int] = []
    monkeypatch.setattr(payments.tasks, "payment_refund_enqueue", refunds.append)
    order = _place(alice, product, "charged-then-cancelled")
    payment = Payment.objects.get(order=order)
    provider_charge(idempotency_key=payment.idempotency_key, amount=payment.amount, currency="EUR", reference="")
    # The lookup's answer takes a moment (the cancel lands meanwhile); then every refund attempt fails.
    provider.control(
        faults=[
            {"kind": "late_answer", "on": "lookup", "delay_ms": 500},
            {"kind": "unavailable", "on": "refund", "calls": 3},
        ]
    )

    def reconcile_or_cancel(index: int) -> Any:
        if index == 0:
            return payment_reconcile(now=_later(django_settings.PAYMENT_ABANDON_AFTER_S))
        assert wait_until(lambda: provider.stats()["faults_applied"].get("late_answer") == 1, timeout_s=10)
        return order_cancel(order=order)

    report, cancelled = run_in_threads(2, reconcile_or_cancel)

    assert not isinstance(report, BaseException), report
    assert cancelled.status == OrderStatus.CANCELLED  # type: ignore[union-attr]
    assert Payment.objects.get(order=order).status == PaymentStatus.CAPTURED  # the money is recorded ...
    assert refunds == [order.pk]  # ... and its refund is owed, sent by the same run
    assert report.refunds_enqueued == 1  # type: ignore[union-attr]


@pytest.mark.parametrize("provider_saw", ["a charge", "a decline", "nothing"])
def test_a_cancelled_order_whose_payment_was_never_heard_of_is_settled_from_the_provider(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product, provider_saw: str
) -> None:
    """Found by the lifecycle model: the provider charged, but the worker died before recording it (or every
    answer was lost); then the customer cancelled. The capture task now skips the cancelled order, and no job
    looked at a pending payment on a cancelled order: the customer stayed charged, never refunded."""
    order = _place(alice, product, "charged-unheard-cancelled")
    payment = Payment.objects.get(order=order)
    if provider_saw != "nothing":
        provider.control(decline_rate=1.0 if provider_saw == "a decline" else 0.0)
        with contextlib.suppress(ProviderDeclined):  # a decline is what this case wants the provider to record
            provider_charge(
                idempotency_key=payment.idempotency_key, amount=payment.amount, currency="EUR", reference=""
            )
    order_cancel(order=order)
    assert payment_capture(order_id=order.pk) == "skipped"  # the task, delivered again: it never charges now

    report = payment_reconcile(now=_later(django_settings.CELERY_TASK_TIME_LIMIT))  # no attempt still running

    settled = Payment.objects.get(order=order)
    stats = provider.stats()
    if provider_saw == "a charge":
        assert settled.status == PaymentStatus.REFUNDED
        assert stats["refunds_per_key"] == {payment.idempotency_key: 1}
    else:
        assert settled.status == PaymentStatus.FAILED
        assert stats["refunds"] == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    assert Product.objects.get(pk=product.pk).stock_on_hand == 10  # returned once, by the cancel
    assert report.cancelled_settled_from_provider == 1
    later = _later(django_settings.CELERY_TASK_TIME_LIMIT)
    assert payment_reconcile(now=later).cancelled_settled_from_provider == 0  # settled: nothing left to ask


def _an_attempt_just_started(order: Order) -> None:
    """A capture attempt began a moment ago and has not answered yet (capture stamps updated_at first)."""
    Payment.objects.filter(order=order).update(attempts=1, updated_at=timezone.now())


def test_the_abandoning_job_does_not_call_an_order_never_charged_while_an_attempt_may_be_in_flight(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product
) -> None:
    """Found by the lifecycle model: the lookup said "no charge", the job cancelled the order and failed its
    payment, and the capture in flight charged a moment later with its answer lost: money taken, never refunded."""
    order = _place(alice, product, "old-but-busy")
    Order.objects.filter(pk=order.pk).update(
        created_at=timezone.now() - timedelta(seconds=django_settings.PAYMENT_ABANDON_AFTER_S + 1)
    )
    _an_attempt_just_started(order)

    report = payment_reconcile()

    assert (report.abandoned, report.undecided) == (0, 1)
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PENDING_PAYMENT
    # The attempt in flight charges; its answer is lost. The next run finds the charge and settles it.
    payment = Payment.objects.get(order=order)
    provider_charge(idempotency_key=payment.idempotency_key, amount=payment.amount, currency="EUR", reference="")
    assert payment_reconcile(now=_later(django_settings.CELERY_TASK_TIME_LIMIT)).settled_from_provider == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.PAID


def test_a_cancelled_order_with_an_attempt_in_flight_is_asked_about_again_later(
    provider: ProviderSimulator, breaker: CircuitBreaker, alice: User, product: Product
) -> None:
    order = _place(alice, product, "cancelled-while-charging")
    _an_attempt_just_started(order)
    order_cancel(order=order)

    assert payment_reconcile().cancelled_settled_from_provider == 0  # "no charge yet" proves nothing yet
    assert Payment.objects.get(order=order).status == PaymentStatus.PENDING
    payment = Payment.objects.get(order=order)
    provider_charge(idempotency_key=payment.idempotency_key, amount=payment.amount, currency="EUR", reference="")

    assert payment_reconcile(now=_later(django_settings.CELERY_TASK_TIME_LIMIT)).cancelled_settled_from_provider == 1
    assert Payment.objects.get(order=order).status == PaymentStatus.REFUNDED
    assert provider.stats()["refunds_per_key"] == {payment.idempotency_key: 1}
