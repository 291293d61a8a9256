"""Real SMTP for the mail tests: the shop's own sink (mail/sink.py) as a separate process on a free port, and a
real Celery worker process where a test claims delivery by the worker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

from mail.mailbox import StoredMessage, journal, stored_message, stored_messages
from tests.capacity.infra import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class SmtpSink:
    """A running `python -m mail.sink`: what it stored (.eml files) and every SMTP delivery (journal)."""

    port: int
    directory: Path
    hold_file: Path
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(default_factory=lambda: Path(tempfile.mkstemp(suffix=".sink.log")[1]))

    def start(self) -> SmtpSink:
        command = [sys.executable, "-m", "mail.sink", "--port", str(self.port), "--directory", str(self.directory)]
        command += ["--hold-while", str(self.hold_file)]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._listening, timeout_s=30, what=f"the SMTP sink on port {self.port}")
        return self

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the SMTP sink exited: {self.log.read_text()}")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            return probe.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)

    def messages(self) -> list[StoredMessage]:
        return stored_messages(self.directory)

    def message(self, name: str) -> StoredMessage:
        found = stored_message(self.directory, name)
        assert found is not None, f"no stored message {name}"
        return found

    def deliveries(self) -> list[dict[str, Any]]:
        return journal(self.directory)

    def only_message(self) -> StoredMessage:
        stored = self.messages()
        assert len(stored) == 1, f"expected one message, the sink has {len(stored)}: {[m.subject for m in stored]}"
        return self.message(stored[0].name)

    def wait_for_messages(self, count: int, *, timeout_s: float = 60) -> list[StoredMessage]:
        wait_for(lambda: len(self.messages()) >= count, timeout_s=timeout_s, what=f"{count} message(s) in the sink")
        return self.messages()

    def hold_replies(self) -> None:
        """From now on the sink stores each message, then holds its 250 reply until `release_replies()`."""
        self.hold_file.touch()

    def release_replies(self) -> None:
        self.hold_file.unlink(missing_ok=True)


def sink_env(sink: SmtpSink) -> dict[str, str]:
    """What a worker process needs in its environment to mail this sink."""
    return {"EMAIL_HOST": "127.0.0.1", "EMAIL_PORT": str(sink.port), "EMAIL_USE_TLS": "false"}


@pytest.fixture
def smtp_sink(tmp_path: Path, settings: Any) -> Iterator[SmtpSink]:
    """A real SMTP server process on a free port; this test's EMAIL_* settings point at it."""
    sink = SmtpSink(port=free_port(), directory=tmp_path / "mail", hold_file=tmp_path / "hold").start()
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = sink.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.MAIL_SINK_DIR = sink.directory
    yield sink
    sink.release_replies()
    sink.stop()


@pytest.fixture
def dead_mail_server(settings: Any) -> int:
    """A port where nothing listens: the mail server is down."""
    port = free_port()
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    return port


# --- A real Celery worker --------------------------------------------------------------------------------------


def start_worker(
    *, broker_url: str, log: Path, extra_env: dict[str, str] | None = None, app: str = "config"
) -> subprocess.Popen[bytes]:
    """`celery -A <app> worker` in its own process group, on this run's test database (through PgBouncer)."""
    database = settings.DATABASES["default"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_ENV="test",
        ZEAL_ENABLED="false",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        REDIS_URL=broker_url,
        CELERY_BROKER_URL=broker_url,
        SHOP_BASE_URL="http://testserver",
        PYTHONUNBUFFERED="1",
        **(extra_env or {}),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "celery", "-A", app, "worker", "--concurrency=1", "--pool=prefork"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel=INFO"]
    with log.open("ab") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_worker(worker: subprocess.Popen[bytes], *, cold: bool = False) -> None:
    if worker.poll() is not None:
        return
    if cold:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker and its pool child die at once, mid-task
        worker.wait(timeout=30)
        return
    os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)
