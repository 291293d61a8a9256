"""Hand an outbox row to a Celery worker. The task is named, not imported: mail/tasks.py imports the services,
and the services send tasks, so naming the task keeps the imports one way (tasks -> services -> dispatch)."""

from __future__ import annotations

import structlog
from celery import current_app

logger = structlog.get_logger(__name__)

DELIVER_TASK = "mail.tasks.mail_deliver_task"


def mail_delivery_enqueue(outbox_id: int) -> None:
    """Send the delivery task; if the broker is down the row still waits, and the re-drive job sends it."""
    try:
        current_app.send_task(DELIVER_TASK, args=[outbox_id])
    except Exception:
        # Broker down: the outbox row is the source of truth; nothing the caller did is undone or delayed.
        logger.warning("could not enqueue mail delivery", outbox_id=outbox_id, exc_info=True)
