"""Celery tasks for mail. Thin: they take ids and call mail.services; the outbox row is the source of truth.

A lost task (broker down at commit, a worker killed) is not lost mail: the row stays pending or claimed, and
`mail_redrive_task` (Celery beat, config/celery.py) sends it again. Retries are scheduled in the row
(next_attempt_at, with backoff), not in the broker, so a worker restart loses no schedule.
"""

from __future__ import annotations

from celery import shared_task

from mail.services import outbox_deliver, outbox_redrive


@shared_task(
    # Lost work: acknowledged only after it ran; a worker that dies mid-task gives the message back.
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def mail_deliver_task(outbox_id: int) -> str:
    return outbox_deliver(outbox_id=outbox_id)


@shared_task(acks_late=True, ignore_result=True)
def mail_redrive_task() -> dict[str, int]:
    """Periodic: lost nudges, due retries and expired claims get a delivery task."""
    return outbox_redrive().as_dict()
