"""Periodic housekeeping for Idempotency-Key records (scheduled in config/celery.py)."""

from __future__ import annotations

import structlog
from celery import shared_task

from idempotency.services import idempotency_purge_expired

logger = structlog.get_logger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def idempotency_purge_task() -> int:
    """Delete keys older than IDEMPOTENCY_KEY_RETENTION_HOURS. Idempotent: a second run deletes nothing."""
    purged = idempotency_purge_expired()
    logger.info("idempotency keys purged", purged=purged)
    return purged
