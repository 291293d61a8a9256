"""Celery tasks for payments. They take ids, are idempotent, and are enqueued after commit."""

from __future__ import annotations

import logging

from celery import shared_task

from payments.client import ProviderUnavailable
from payments.services import payment_capture, payment_refund

logger = logging.getLogger(__name__)


@shared_task(
    bind=True,
    autoretry_for=(ProviderUnavailable,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
    acks_late=True,
)
def payment_capture_task(self: object, order_id: int) -> str:
    return payment_capture(order_id=order_id)


@shared_task(
    bind=True,
    autoretry_for=(ProviderUnavailable,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
    acks_late=True,
)
def payment_refund_task(self: object, order_id: int) -> str:
    return payment_refund(order_id=order_id)


def payment_capture_enqueue(order_id: int) -> None:
    """Send the capture task; if the broker is down the order still waits safely in pending_payment."""
    try:
        payment_capture_task.delay(order_id)
    except Exception:
        # Broker down: the payment row is the source of truth; the re-drive job will pick this order up.
        logger.warning("could not enqueue payment capture", extra={"order_id": order_id}, exc_info=True)


def payment_refund_enqueue(order_id: int) -> None:
    try:
        payment_refund_task.delay(order_id)
    except Exception:
        logger.warning("could not enqueue payment refund", extra={"order_id": order_id}, exc_info=True)
