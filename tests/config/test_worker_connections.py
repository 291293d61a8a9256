"""A real Celery worker keeps its database connection across tasks, and drops it after a task that failed.

Celery's Django fixup closes every connection before and after each task, so each task connected to PgBouncer
anew (8 % of the worker's samples under load). CELERY_DB_REUSE_MAX keeps it; config/celery.py closes it after
a task that did not succeed (a time limit may have interrupted a query and left it broken). What the worker holds
is read from PgBouncer's own client list, by the worker's application_name. The twin runs Celery's default
(CELERY_DB_REUSE_MAX=0): after each task the worker holds no connection at all.
"""

from __future__ import annotations

import re
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config.celery import app as celery_app
from mail.tasks import mail_deliver_task
from tests.capacity.infra import PrivateRedis, pgbouncer_show, wait_for
from tests.mail.conftest import start_worker, stop_worker

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


def _worker_clients(application_name: str) -> list[int]:
    """The client ports PgBouncer holds for this application name (SHOW CLIENTS: its admin console)."""
    return sorted(
        int(client["port"]) for client in pgbouncer_show("CLIENTS") if client["application_name"] == application_name
    )


class Worker:
    def __init__(self, tmp_path: Path, *, reuse_max: str) -> None:
        self.broker = PrivateRedis()
        self.broker.start()
        self.application_name = f"worker-test-{uuid.uuid4().hex[:8]}"
        self.log = tmp_path / "worker.log"
        self.process: subprocess.Popen[bytes] = start_worker(
            broker_url=self.broker.url(),
            log=self.log,
            extra_env={"DB_APPLICATION_NAME": self.application_name, "CELERY_DB_REUSE_MAX": reuse_max},
        )
        self.finished = 0

    def run(self, outbox_id: object) -> list[int]:
        """One delivery task (an id with no row: it claims nothing, after a query); then the worker's clients."""
        task: Any = mail_deliver_task  # celery's stubs do not know apply_async's connection argument
        with celery_app.connection_for_write(self.broker.url()) as connection:
            task.apply_async((outbox_id,), connection=connection)
        self.finished += 1
        wait_for(lambda: self._done() >= self.finished, timeout_s=120, what=f"the task to finish: {self.log}")
        return self._settled_clients()

    def _done(self) -> int:
        if self.process.poll() is not None:
            raise AssertionError(f"the worker exited: {self.log.read_text()[-3000:]}")
        return len(re.findall(r"mail_deliver_task\[[^\]]+\] (?:succeeded|raised)", self.log.read_text()))

    def _settled_clients(self) -> list[int]:
        """The task's end is logged before its last signal runs: read until three reads in a row agree."""
        readings = [_worker_clients(self.application_name)]
        while len(readings) < 3 or len({tuple(reading) for reading in readings[-3:]}) > 1:
            time.sleep(0.2)
            readings.append(_worker_clients(self.application_name))
            assert len(readings) < 100, readings
        return readings[-1]

    def stop(self) -> None:
        stop_worker(self.process)
        self.broker.stop()


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[type[Worker]]:
    started: list[Worker] = []

    def start(*, reuse_max: str) -> Worker:
        worker = Worker(tmp_path, reuse_max=reuse_max)
        started.append(worker)
        return worker

    yield start  # type: ignore[misc]
    for worker in started:
        worker.stop()


def test_the_worker_keeps_its_connection_across_tasks_and_drops_it_after_a_failure(worker_factory) -> None:
    worker = worker_factory(reuse_max="1000")

    after_first, after_second, after_third = worker.run(0), worker.run(-1), worker.run(-2)
    assert len(after_first) == 1  # kept after the task
    assert after_first == after_second == after_third  # the same client connection served all three

    after_failure = worker.run("not-an-id")  # the task raises: its connection is dropped, not reused
    assert after_failure == []
    assert len(worker.run(0)) == 1  # and the next task connects afresh


def test_twin_celery_default_connects_for_every_task(worker_factory) -> None:
    worker = worker_factory(reuse_max="0")

    assert worker.run(0) == []  # closed after the task: the next one connects again
    assert worker.run(-1) == []
