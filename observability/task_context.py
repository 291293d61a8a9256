"""The request id (and user id) travel with the Celery tasks a request enqueues, so one id finds the whole story.

before_task_publish runs in the process that sends the task and copies the ids into the message headers;
task_prerun runs in the worker and restores them into the context variables that logs and Sentry read.
A task sent by a task (a retry, a follow-up) inherits the ids the same way. A task nobody sent from a
request (Celery beat) gets its own task id as request id, so its lines still belong together.

Each task also writes one line when it starts and one when it ends (state, duration, CPU), with the ids, and
counts its run and its CPU in the metrics (shop_celery_tasks_total, shop_celery_task_cpu_seconds_total): which
task costs the worker what, and how much of the worker's CPU is Celery's own work around the tasks.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from celery import signals

from core.metrics import record_task
from core.request_context import current_request_id
from observability.context import current_user_id, task_user_id

REQUEST_ID_HEADER = "shop_request_id"
USER_ID_HEADER = "shop_user_id"

logger = structlog.get_logger("observability.celery")

# task id -> (context tokens, start time, the thread's CPU time at the start); one task at a time per thread.
_running: dict[str, tuple[Any, Any, float, float]] = {}


@signals.before_task_publish.connect
def _put_ids_in_headers(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is None:
        return
    request_id = current_request_id.get()
    if request_id is not None:
        headers.setdefault(REQUEST_ID_HEADER, request_id)
    user_id = current_user_id()
    if user_id is not None:
        headers.setdefault(USER_ID_HEADER, user_id)


@signals.task_prerun.connect
def _restore_ids(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    if task_id is None or task is None:
        return
    request = task.request
    # Eager tasks run inside the request: keep its id rather than replacing it.
    request_id = request.get(REQUEST_ID_HEADER) or current_request_id.get() or task_id
    user_id = request.get(USER_ID_HEADER) or current_user_id()
    _running[task_id] = (
        current_request_id.set(request_id),
        task_user_id.set(user_id),
        time.perf_counter(),
        time.thread_time(),
    )
    logger.info("task started", task=task.name, task_id=task_id, retries=request.retries)


@signals.task_postrun.connect
def _forget_ids(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    if task_id is None or task_id not in _running:
        return
    request_token, user_token, started, cpu_started = _running.pop(task_id)
    # The thread's own CPU: a prefork child runs one task at a time on its main thread, a thread pool one per thread.
    cpu_s = time.thread_time() - cpu_started
    name = getattr(task, "name", None) or "unknown"
    record_task(task=name, state=state or "UNKNOWN", cpu_s=cpu_s)
    logger.info(
        "task finished",
        task=name,
        task_id=task_id,
        state=state,
        duration_ms=round((time.perf_counter() - started) * 1000, 2),
        cpu_ms=round(cpu_s * 1000, 2),
    )
    task_user_id.reset(user_token)
    current_request_id.reset(request_token)


@signals.task_retry.connect
def _log_retry(request: Any = None, reason: Any = None, **_: Any) -> None:
    logger.warning(
        "task retry",
        task=getattr(request, "task", None),
        task_id=getattr(request, "id", None),
        reason=str(reason)[:200],
    )


@signals.task_failure.connect
def _log_failure(
    task_id: str | None = None, exception: BaseException | None = None, sender: Any = None, **_: Any
) -> None:
    # The stack goes to Sentry (CeleryIntegration) and to Celery's own error line; this line names the ids.
    logger.error(
        "task failed",
        task=getattr(sender, "name", None),
        task_id=task_id,
        error=type(exception).__name__ if exception is not None else None,
    )
