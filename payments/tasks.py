"""Celery tasks for payments. They take ids, are idempotent, and are enqueued after commit.

The database, not the queue, is the source of truth: a task that is lost (broker down, worker killed past
its retries) leaves its order in pending_payment, and `payments_reconcile_task` sends it again.
"""

from __future__ import annotations

import structlog
from celery import shared_task

from payments.client import ProviderUnavailable
from payments.services import payment_capture, payment_reconcile, payment_refund

logger = structlog.get_logger(__name__)


@shared_task(
    bind=True,
    # Transient provider trouble: retry with exponential backoff and jitter (2 s, 4 s, ... capped at 60 s).
    autoretry_for=(ProviderUnavailable,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=5,
    # Lost work: acknowledged only after it ran; a worker that dies mid-task gives it back to the queue.
    acks_late=True,
    reject_on_worker_lost=True,
)
def payment_capture_task(self: object, order_id: int) -> str:
    outcome = payment_capture(order_id=order_id)
    logger.info("payment capture", order_id=order_id, outcome=outcome)
    return outcome


@shared_task(
    bind=True,
    autoretry_for=(ProviderUnavailable,),
    retry_backoff=2,
    retry_backoff_max=60,
    retry_jitter=True,
    max_retries=10,
    acks_late=True,
    reject_on_worker_lost=True,
)
def payment_refund_task(self: object, order_id: int) -> str:
    return payment_refund(order_id=order_id)


@shared_task(acks_late=True, ignore_result=True)
def payments_reconcile_task() -> dict[str, int]:
    """Periodic (config/celery.py beat schedule): re-drive stuck orders, abandon old ones, repair orphans."""
    return payment_reconcile().as_dict()


def payment_capture_enqueue(order_id: int) -> None:
    """Send the capture task; if the broker is down the order still waits safely in pending_payment."""
    try:
        payment_capture_task.delay(order_id)
    except Exception:
        # Broker down: the payment row is the source of truth; the re-drive job will pick this order up.
        logger.warning("could not enqueue payment capture", order_id=order_id, exc_info=True)


def payment_refund_enqueue(order_id: int) -> None:
    try:
        payment_refund_task.delay(order_id)
    except Exception:
        # Broker down: the captured payment on a cancelled order is found again by the reconciliation job.
        logger.warning("could not enqueue payment refund", order_id=order_id, exc_info=True)
