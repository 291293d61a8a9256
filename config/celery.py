"""The Celery app. Settings come from Django settings (CELERY_*); the beat schedule lives here.

Celery done right (the settings are in config/settings.py, each with the failure it prevents):
late acks + reject on worker lost (a crashed worker's task goes back to the queue), prefetch 1 (a slow task
does not hold others hostage), hard and soft time limits, retries with backoff on the tasks themselves,
tasks that take ids and are idempotent, and enqueued with transaction.on_commit.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("hardened_shop")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
# The default in every thread, not only this one: core/health.py and observability/collectors.py reach the app
# as celery.current_app (the bottom layers never import config), also from the readiness check's threads.
app.set_default()


@task_prerun.connect
def _database_connections_checked(task: Any = None, **kwargs: Any) -> None:
    """A task starts as a request does: a connection past CONN_MAX_AGE, or one that errored, is dropped first, and
    CONN_HEALTH_CHECKS checks the kept one before its first query (a PgBouncer restarted since the last task)."""
    if _in_worker(task):
        from django.db import close_old_connections

        close_old_connections()


@task_postrun.connect
def _database_connections_settled(task: Any = None, state: str | None = None, **kwargs: Any) -> None:
    """Kept across tasks (CELERY_DB_REUSE_MAX), except after a task that did not succeed: a time limit that
    interrupted a query leaves a connection Django takes for usable, and the next task would fail on it."""
    if not _in_worker(task):
        return
    from django.db import close_old_connections, connections

    if state == "SUCCESS":
        close_old_connections()
    else:
        connections.close_all()


def _in_worker(task: Any) -> bool:
    # An eager task runs inside its caller's request or test transaction: its connection is not the task's to close.
    from django.conf import settings

    reusing = bool(getattr(settings, "CELERY_DB_REUSE_MAX", 0))  # 0: Celery closes them around every task itself
    return reusing and not getattr(getattr(task, "request", None), "is_eager", False)


def _every(setting: str, default: float) -> float:
    # Imported here: this module is imported before Django's settings are configured (config/__init__.py).
    from django.conf import settings

    return float(getattr(settings, setting, default))


app.conf.beat_schedule = {
    # Stuck orders: re-drive pending payments, abandon very old ones, repair orphans (payments/services.py).
    "payments-reconcile": {
        "task": "payments.tasks.payments_reconcile_task",
        "schedule": _every("PAYMENT_RECONCILE_EVERY_S", 30),
        # A run that could not start within one interval is dropped: the next one does the same work.
        "options": {"expires": _every("PAYMENT_RECONCILE_EVERY_S", 30)},
    },
    # Mail owed: lost nudges, retries that are due, claims whose worker died (mail/services.py).
    "mail-redrive": {
        "task": "mail.tasks.mail_redrive_task",
        "schedule": _every("MAIL_REDRIVE_EVERY_S", 30),
        "options": {"expires": _every("MAIL_REDRIVE_EVERY_S", 30)},
    },
    # Expired Idempotency-Key rows (kept IDEMPOTENCY_KEY_RETENTION_HOURS, at least 24 h).
    "idempotency-purge": {
        "task": "idempotency.tasks.idempotency_purge_task",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    # Unbounded table: expired outstanding/blacklisted JWTs (simplejwt's flushexpiredtokens, accounts/tasks.py).
    "tokens-flush-expired": {
        "task": "accounts.tasks.tokens_flush_expired_task",
        "schedule": 3600.0,
        "options": {"expires": 3600},
    },
    # Silent corruption: audit the data invariants; results go to /metrics and Sentry (observability/).
    "invariants-check": {
        "task": "observability.tasks.invariants_check_task",
        "schedule": _every("INVARIANT_CHECK_INTERVAL_S", 300),
        "options": {"expires": _every("INVARIANT_CHECK_INTERVAL_S", 300)},
    },
}
