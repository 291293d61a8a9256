"""A task that fails until its retries are exhausted, for the Sentry test."""

from __future__ import annotations

import structlog
from celery import shared_task

logger = structlog.get_logger(__name__)


class FlakyDependency(ConnectionError):
    pass


@shared_task(bind=True, autoretry_for=(FlakyDependency,), max_retries=1, default_retry_delay=0, retry_backoff=False)
def explode_task(self: object, card_number: str) -> None:
    # The card number is an argument on purpose: Sentry must not receive task arguments.
    logger.info("explode task running")
    raise FlakyDependency(f"provider refused card {card_number}")
