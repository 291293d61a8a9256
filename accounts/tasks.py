"""Periodic housekeeping for JWTs (scheduled in config/celery.py)."""

from __future__ import annotations

import structlog
from celery import shared_task
from django.core.management import call_command

logger = structlog.get_logger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def tokens_flush_expired_task() -> None:
    """Unbounded table: every login and every refresh adds an outstanding token (and every rotation a
    blacklist row); expired ones protect nothing. simplejwt's own `flushexpiredtokens` deletes them (their
    blacklist rows go with them). Idempotent: a second run deletes nothing."""
    call_command("flushexpiredtokens")
    logger.info("expired JWTs flushed")
