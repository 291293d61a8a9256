"""Payment bookkeeping and reconciliation. The provider is called outside any database transaction.

No order is ever charged twice, by three independent guards:
1. the provider call carries the payment's idempotency key, so the provider answers a repeat with the first
   charge instead of a new one;
2. every state change is a guarded update (`WHERE status = <expected>`), so a duplicated or redelivered task
   cannot move a payment or an order twice;
3. capture skips a payment that is no longer pending before it calls the provider at all.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

import structlog
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import ApplicationError
from core.metrics import record_payment_attempt, record_payment_failure
from mail.models import MailEvent
from mail.services import order_mail_enqueue
from orders.models import Order, OrderStatus
from orders.services import do_order_release_stock, order_cancel, order_transition
from payments.breaker import CLOSED, provider_breaker
from payments.client import (
    SUCCEEDED,
    CircuitOpen,
    ProviderDeclined,
    ProviderUnavailable,
    provider_charge,
    provider_charge_lookup,
    provider_refund,
)
from payments.models import Payment, PaymentStatus

logger = structlog.get_logger(__name__)


def payment_idempotency_key(order: Order) -> str:
    # Double charge: the provider sees the same key for every attempt at this order's payment.
    return f"shop-order-{order.pk}"


def payment_record_for_order(*, order: Order) -> Payment:
    """Write the pending payment row beside the order. Call inside the order's transaction."""
    assert transaction.get_connection().in_atomic_block
    return Payment.objects.create(
        order=order,
        idempotency_key=payment_idempotency_key(order),
        amount=order.total,
        currency=order.currency,
    )


def payment_capture(*, order_id: int) -> str:
    """Charge the provider for a pending order and move it to paid or payment_failed. Idempotent.

    Returns what happened, for logs and tests: captured, already_captured, refunded_after_cancel, declined,
    deferred (circuit open: the re-drive job retries), skipped (already settled) or missing (no such order).
    Raises ProviderUnavailable when the provider gave no final answer (the task retries with backoff).
    """
    payment = Payment.objects.select_related("order").filter(order_id=order_id).first()
    if payment is None:
        return "missing"  # a task for an order that never committed (or a purged test database)
    if payment.order.status != OrderStatus.PENDING_PAYMENT or payment.status != PaymentStatus.PENDING:
        return "skipped"  # Redelivered task: the order already settled; never charge again.
    # Stuck order: updated_at marks the last attempt; the re-drive job waits PAYMENT_REDRIVE_AFTER_S from it.
    # Charged after it was abandoned: the stamp is conditional, so a cancel or a reconciliation that settled this
    # payment since the read above wins and nothing is charged; one that looks after the stamp sees it and waits
    # (its compare-and-set on updated_at, _abandon_or_settle_old_orders).
    stamped = Payment.objects.filter(
        pk=payment.pk, status=PaymentStatus.PENDING, order__status=OrderStatus.PENDING_PAYMENT
    ).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    if not stamped:
        return "skipped"
    record_payment_attempt()
    try:
        charge = provider_charge(
            idempotency_key=payment.idempotency_key,
            amount=payment.amount,
            currency=payment.currency,
            reference=payment.order.number or str(order_id),
        )
    except CircuitOpen:
        record_payment_failure("breaker_open")
        return "deferred"  # Provider known down: the order waits in pending_payment; nothing was sent.
    except ProviderDeclined:
        record_payment_failure("declined")
        payment_settle_declined(payment=payment)
        return "declined"
    except ProviderUnavailable as error:
        record_payment_failure("unavailable")
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(last_error=str(error)[:500])
        raise
    return payment_settle_charge(payment=payment, charge_id=charge.charge_id)


def payment_settle_declined(*, payment: Payment) -> str:
    """Record a decline the provider confirmed: the payment fails and the order, if it was still waiting, moves
    to payment_failed with its units back on the shelf, all in one transaction. Idempotent.

    The order row is locked first, so this serialises with `order_cancel` and with a settle of the same order.
    """
    with transaction.atomic(durable=True):
        locked = Order.objects.select_for_update(of=("self",)).get(pk=payment.order_id)
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.FAILED, last_error="declined", updated_at=timezone.now()
        )
        if locked.status != OrderStatus.PENDING_PAYMENT:
            return "skipped"  # Redelivered task, or the customer cancelled first: the stock is already back.
        # Stock held forever: an order that can no longer be paid gives its units back in this transaction.
        if do_order_release_stock(order=locked, to_status=OrderStatus.PAYMENT_FAILED):
            # The failure notice commits with the failure; a redelivered decline stopped at "skipped" above.
            order_mail_enqueue(order=locked, event=MailEvent.PAYMENT_FAILED)
    return "declined"


def payment_settle_charge(*, payment: Payment, charge_id: str) -> str:
    """Record a charge the provider confirmed, and move the order to paid if it is still waiting.

    The order row is locked, so this serialises with `order_cancel`: either the cancel saw a paid order
    (and refunds it), or this sees a cancelled order (and refunds it here). Never both, never neither.
    """
    with transaction.atomic(durable=True):
        order_status = (
            Order.objects.select_for_update(of=("self",)).values_list("status", flat=True).get(pk=payment.order_id)
        )
        # Money was taken: record it whatever the order's state (an already refunded payment stays refunded).
        Payment.objects.filter(pk=payment.pk, status__in=[PaymentStatus.PENDING, PaymentStatus.FAILED]).update(
            status=PaymentStatus.CAPTURED, provider_reference=charge_id, last_error="", updated_at=timezone.now()
        )
        if order_status == OrderStatus.PENDING_PAYMENT:
            if order_transition(
                order_id=payment.order_id, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID
            ):
                # The receipt commits with the capture; a duplicate task finds the order paid and mails nothing.
                # Read again (not the locked status above): the transition set paid_at, which the receipt shows.
                order_mail_enqueue(order=Order.objects.get(pk=payment.order_id), event=MailEvent.ORDER_PAID)
            return "captured"
    if order_status in {OrderStatus.PAID, OrderStatus.FULFILLED}:
        # Duplicate task: both calls got the same charge back (same key); the first one settled it.
        return "already_captured"
    # Cancel raced the charge and won (or the order was abandoned): the money goes back to the customer.
    payment_refund(order_id=payment.order_id)
    return "refunded_after_cancel"


def payment_refund(*, order_id: int) -> str:
    """Refund a captured payment. Idempotent: the refund carries its own key, and the update is guarded."""
    payment = Payment.objects.get(order_id=order_id)
    if payment.status != PaymentStatus.CAPTURED:
        return "nothing_to_refund"
    provider_refund(idempotency_key=f"{payment.idempotency_key}-refund", charge_id=payment.provider_reference)
    Payment.objects.filter(pk=payment.pk, status=PaymentStatus.CAPTURED).update(
        status=PaymentStatus.REFUNDED, updated_at=timezone.now()
    )
    return "refunded"


# --- Reconciliation --------------------------------------------------------------------------------------------


def no_attempt_in_flight_before(now: datetime) -> datetime:
    """Attempts stamped (Payment.updated_at) before this moment have ended: answered, or killed with their task.

    A capture stamps the payment before it calls the provider, and its task dies at CELERY_TASK_TIME_LIMIT at
    the latest. "The provider has no charge for this key" proves "never charged" only for a payment whose last
    attempt is older than that: a younger one may still charge, with its answer lost.
    """
    return now - timedelta(seconds=max(settings.CELERY_TASK_TIME_LIMIT, settings.PAYMENT_REDRIVE_AFTER_S))


@dataclass
class ReconcileReport:
    """What one reconciliation run found and repaired. Logged as one line; returned for tests."""

    payments_created: int = 0
    redriven: int = 0
    redrive_held_by_breaker: int = 0
    abandoned: int = 0
    settled_from_provider: int = 0
    declined_at_provider: int = 0
    cancelled_settled_from_provider: int = 0
    undecided: int = 0
    refunds_enqueued: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def payment_reconcile(*, now: datetime | None = None, batch_size: int = 200) -> ReconcileReport:
    """Find and repair what a crash, a broker outage or a provider outage left behind.

    The rule for orders stuck in pending_payment (see docs/patterns/03-capacity.md):
    - older than PAYMENT_REDRIVE_AFTER_S since the last attempt: send the capture task again (re-drive).
      While the breaker is open and cooling down nothing is sent; once the cool-down is over, one order is
      sent as the probe, and the rest follow on the next run after the probe closed the circuit.
    - older than PAYMENT_ABANDON_AFTER_S since it was placed: ask the provider whether the payment's key was
      ever charged, and how it ended (the charge's status, not the HTTP code). Charged: settle it as paid.
      Declined: payment_failed, which releases its stock. Never charged, and no attempt can still be in flight
      (`no_attempt_in_flight_before`): cancel the order, which releases its stock. No final answer (provider
      down, the charge still undecided, an attempt maybe still running): leave it for the next run, because
      cancelling an order the customer may have paid for is worse than holding stock a little longer.
    - a pending_payment order without a payment row (data written around `order_place`): create the row.
    - a cancelled order whose payment is still pending (the provider may have charged while the shop never heard:
      the worker died after the charge, or every answer was lost, and then the customer cancelled; the capture
      task skips a cancelled order): ask the provider. Charged: record it and refund it. Declined, or never
      charged with no attempt still in flight: the payment failed. No final answer: ask again next run.
    - a captured payment on a cancelled order (a refund task that was lost): send the refund again.
    """
    now = now or timezone.now()
    report = ReconcileReport()
    _create_missing_payments(report, batch_size)
    _abandon_or_settle_old_orders(report, now, batch_size)
    _settle_pending_on_cancelled_orders(report, now, batch_size)
    _redrive_stuck_payments(report, now, batch_size)
    _refund_captured_on_cancelled(report, batch_size)
    logger.info("payment reconciliation", **report.as_dict())
    return report


def _create_missing_payments(report: ReconcileReport, batch_size: int) -> None:
    orphans = Order.objects.filter(status=OrderStatus.PENDING_PAYMENT, payment__isnull=True).order_by("pk")
    for order in orphans.only("pk", "total", "currency")[:batch_size]:
        try:
            with transaction.atomic():
                payment_record_for_order(order=order)
        except IntegrityError:
            continue  # Race: order_place or another run wrote it first; one row per order is the guarantee.
        report.payments_created += 1


def _abandon_or_settle_old_orders(report: ReconcileReport, now: datetime, batch_size: int) -> None:
    cutoff = now - timedelta(seconds=settings.PAYMENT_ABANDON_AFTER_S)
    stale = (
        Payment.objects.select_related("order")
        .filter(status=PaymentStatus.PENDING, order__status=OrderStatus.PENDING_PAYMENT, order__created_at__lt=cutoff)
        .order_by("order__created_at")
    )
    for payment in stale[:batch_size]:
        try:
            charge = provider_charge_lookup(idempotency_key=payment.idempotency_key)
        except ProviderUnavailable:
            report.undecided += 1  # includes CircuitOpen and an undecided charge: no final answer, no guess
            continue
        if charge is not None and charge.status == SUCCEEDED:
            try:
                payment_settle_charge(payment=payment, charge_id=charge.charge_id)
            except ProviderUnavailable:
                # A cancel won the race and its refund found the provider down: the charge is recorded, the
                # refund is owed and sent by _refund_captured_on_cancelled; one provider error never ends the run.
                report.undecided += 1
                continue
            report.settled_from_provider += 1
        elif charge is not None:  # read_charge answers only SUCCEEDED or DECLINED
            payment_settle_declined(payment=payment)
            report.declined_at_provider += 1
        elif payment.updated_at >= no_attempt_in_flight_before(now):
            # Charged after the lookup: an attempt still running may yet charge and lose its answer; "no charge"
            # proves nothing until it has ended.
            report.undecided += 1
        else:
            try:
                # A capture that lands after the lookup still ends consistent: settle sees the cancelled
                # order and refunds it, or this cancel sees a paid order and refuses (only_if_status).
                order_cancel(order=payment.order, only_if_status=OrderStatus.PENDING_PAYMENT)
            except ApplicationError:
                report.undecided += 1  # busy, or no longer cancellable: the next run looks again
                continue
            # Charged while we looked: an attempt that started after the lookup stamped updated_at and may have
            # charged; only the payment exactly as it was looked up is marked failed (compare-and-set). Otherwise
            # it stays pending on a cancelled order, which the next step settles from the provider.
            Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING, updated_at=payment.updated_at).update(
                status=PaymentStatus.FAILED, last_error="abandoned: never charged", updated_at=timezone.now()
            )
            report.abandoned += 1


def _settle_pending_on_cancelled_orders(report: ReconcileReport, now: datetime, batch_size: int) -> None:
    # Charged, cancelled, never refunded: nothing else looks at a payment left pending on a cancelled order.
    unheard = (
        Payment.objects.filter(status=PaymentStatus.PENDING, order__status=OrderStatus.CANCELLED)
        .order_by("pk")
        .only("pk", "order_id", "idempotency_key", "updated_at")
    )
    for payment in unheard[:batch_size]:
        try:
            charge = provider_charge_lookup(idempotency_key=payment.idempotency_key)
            if charge is not None and charge.status == SUCCEEDED:
                # Records the capture, sees the cancelled order and refunds it (its own refund key: once).
                payment_settle_charge(payment=payment, charge_id=charge.charge_id)
        except ProviderUnavailable:
            report.undecided += 1  # no final answer; or the refund failed and the refund step below owes it
            continue
        if charge is None and payment.updated_at >= no_attempt_in_flight_before(now):
            report.undecided += 1  # Charged after the lookup: an attempt may still be running; ask next run.
            continue
        # Compare-and-set on the attempt stamp, as above: an attempt that started after the lookup may charge.
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING, updated_at=payment.updated_at).update(
            status=PaymentStatus.FAILED, last_error="cancelled before any charge", updated_at=timezone.now()
        )
        report.cancelled_settled_from_provider += 1


def _redrive_stuck_payments(report: ReconcileReport, now: datetime, batch_size: int) -> None:
    # Imported here, not at the top: payments.tasks imports this module at its top (the tasks run these services).
    from payments.tasks import payment_capture_enqueue

    stuck = Payment.objects.filter(
        status=PaymentStatus.PENDING,
        order__status=OrderStatus.PENDING_PAYMENT,
        updated_at__lt=now - timedelta(seconds=settings.PAYMENT_REDRIVE_AFTER_S),
    )
    breaker = provider_breaker()
    if not breaker.cooldown_elapsed():
        # Provider known down: re-sending now would only be refused by the breaker.
        report.redrive_held_by_breaker = stuck.count()
        return
    # Half-open: one order goes first as the probe; the others wait for the circuit to close.
    limit = batch_size if breaker.state() == CLOSED else 1
    order_ids = list(stuck.order_by("updated_at").values_list("order_id", flat=True)[:limit])
    # Duplicate work: touch the rows so the next run does not send these again before REDRIVE_AFTER.
    Payment.objects.filter(order_id__in=order_ids, status=PaymentStatus.PENDING).update(updated_at=now)
    for order_id in order_ids:
        payment_capture_enqueue(order_id)
    report.redriven = len(order_ids)
    if limit == 1:
        report.redrive_held_by_breaker = stuck.count()  # the probe's rows were touched, so they are not counted


def _refund_captured_on_cancelled(report: ReconcileReport, batch_size: int) -> None:
    # Imported here, not at the top: payments.tasks imports this module at its top (the tasks run these services).
    from payments.tasks import payment_refund_enqueue

    unrefunded = Payment.objects.filter(status=PaymentStatus.CAPTURED, order__status=OrderStatus.CANCELLED)
    for order_id in unrefunded.order_by("pk").values_list("order_id", flat=True)[:batch_size]:
        payment_refund_enqueue(order_id)
        report.refunds_enqueued += 1
