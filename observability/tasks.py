"""Periodic audit under Celery beat (config/celery.py): metrics gauge, Sentry events and a log line."""

from __future__ import annotations

import structlog
from celery import shared_task

from observability.invariants import check_all, publish_results

logger = structlog.get_logger(__name__)


@shared_task(acks_late=True, ignore_result=True)
def invariants_check_task() -> bool:
    summary = publish_results(check_all())
    broken = [name for name, outcome in summary["invariants"].items() if not outcome["ok"]]
    if broken:
        logger.error("invariants violated", invariants=broken)
    else:
        logger.info("invariants hold")
    ok: bool = summary["ok"]
    return ok
