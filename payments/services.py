"""Payment bookkeeping. The provider is called by tasks, outside any database transaction."""

from __future__ import annotations

from django.db import transaction

from orders.models import Order
from payments.models import Payment


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

    Runs outside any transaction while calling the provider; each state change is a guarded update.
    Returns what happened, for logs and tests.
    """
    from django.db.models import F

    from orders.models import OrderStatus
    from orders.services import order_transition
    from payments.client import ProviderDeclined, provider_charge
    from payments.models import PaymentStatus

    payment = Payment.objects.select_related("order").filter(order_id=order_id).first()
    if payment is None:
        return "missing"  # a task for an order that never committed (or a purged test database)
    if payment.order.status != OrderStatus.PENDING_PAYMENT or payment.status != PaymentStatus.PENDING:
        return "skipped"  # Redelivered task: the order already settled; never charge again.
    Payment.objects.filter(pk=payment.pk).update(attempts=F("attempts") + 1)
    try:
        charge = provider_charge(
            idempotency_key=payment.idempotency_key,
            amount=payment.amount,
            currency=payment.currency,
            reference=payment.order.number or str(order_id),
        )
    except ProviderDeclined:
        with transaction.atomic(durable=True):
            Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
                status=PaymentStatus.FAILED, last_error="declined"
            )
            order_transition(
                order_id=order_id,
                from_status=OrderStatus.PENDING_PAYMENT,
                to_status=OrderStatus.PAYMENT_FAILED,
            )
        return "declined"
    with transaction.atomic(durable=True):
        Payment.objects.filter(pk=payment.pk, status=PaymentStatus.PENDING).update(
            status=PaymentStatus.CAPTURED, provider_reference=charge.charge_id, last_error=""
        )
        moved = order_transition(order_id=order_id, from_status=OrderStatus.PENDING_PAYMENT, to_status=OrderStatus.PAID)
    if not moved:
        # Cancel raced the charge and won: the money goes back to the customer.
        payment_refund(order_id=order_id)
        return "refunded_after_cancel"
    return "captured"


def payment_refund(*, order_id: int) -> str:
    from payments.client import provider_refund
    from payments.models import PaymentStatus

    payment = Payment.objects.get(order_id=order_id)
    if payment.status != PaymentStatus.CAPTURED:
        return "nothing_to_refund"
    provider_refund(idempotency_key=f"{payment.idempotency_key}-refund", charge_id=payment.provider_reference)
    Payment.objects.filter(pk=payment.pk, status=PaymentStatus.CAPTURED).update(status=PaymentStatus.REFUNDED)
    return "refunded"
