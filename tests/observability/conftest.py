"""A live copy of the shop for the observability tests: gunicorn with several workers and a Celery worker,
as separate processes configured only through the environment (exactly as in production), writing JSON logs
to files, errors to a local Sentry envelope receiver, and metrics to a private multiprocess directory. They use
this run's test database (through PgBouncer) and this run's Redis database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings
from rest_framework_simplejwt.tokens import RefreshToken

from tests.capacity.infra import free_port, wait_for
from tests.factories import ProductFactory, UserFactory
from tests.observability.sentry_receiver import SentryReceiver

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
METRICS_TOKEN = "metrics-token-for-tests"
GUNICORN_WORKERS = 3


def read_json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the file must be one JSON object: a plain-text line fails the test."""
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            lines.append(json.loads(line))
        except json.JSONDecodeError as error:
            raise AssertionError(f"{path.name}:{number} is not JSON: {line[:300]}") from error
    return lines


@dataclass
class LiveStack:
    base_url: str
    receiver: SentryReceiver
    web_log: Path
    worker_log: Path
    multiproc_dir: Path
    alice_id: int
    alice_token: str
    product_id: int
    sold_out_product_id: int

    def web_lines(self) -> list[dict[str, Any]]:
        return read_json_lines(self.web_log)

    def worker_lines(self) -> list[dict[str, Any]]:
        return read_json_lines(self.worker_log)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=10)


def _app_env(*, receiver: SentryReceiver, multiproc_dir: Path) -> dict[str, str]:
    database = settings.DATABASES["default"]
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="tests.observability.live.settings",
        DJANGO_ENV="test",
        ZEAL_ENABLED="false",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        CELERY_BROKER_URL=settings.REDIS_URL,
        LOG_FORMAT="json",
        LOG_LEVEL="INFO",
        SENTRY_DSN=receiver.dsn,
        SENTRY_ENVIRONMENT="test",
        SENTRY_TRACES_SAMPLE_RATE="1.0",
        PROMETHEUS_MULTIPROC_DIR=str(multiproc_dir),
        METRICS_TOKEN=METRICS_TOKEN,
        # Nothing listens here: payment tasks fail fast and retry, which is all these tests need.
        PAYMENT_PROVIDER_URL=f"http://127.0.0.1:{free_port()}",
        PYTHONUNBUFFERED="1",
    )
    return env


def _stop(process: subprocess.Popen[bytes], stop_signal: signal.Signals = signal.SIGTERM) -> None:
    if process.poll() is None:
        process.send_signal(stop_signal)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _empty_all_tables() -> None:
    """What `manage.py flush` does, with room for the TRUNCATE: the app role's statement_timeout is seconds,
    and the lock may have to wait for the stopped processes' PgBouncer connections to be released."""
    from django.core.management.color import no_style
    from django.db import connection, transaction

    tables = connection.introspection.django_table_names(only_existing=True, include_views=False)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', '60s', true), set_config('lock_timeout', '60s', true)")
        for statement in connection.ops.sql_flush(no_style(), tables, reset_sequences=True, allow_cascade=True):
            cursor.execute(statement)


@pytest.fixture(scope="module")
def live_stack(
    django_db_setup: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    workdir = tmp_path_factory.mktemp("live")
    multiproc_dir = workdir / "prometheus"
    multiproc_dir.mkdir()
    broker = redis.Redis.from_url(settings.REDIS_URL)
    broker.flushdb()
    with django_db_blocker.unblock():
        alice = UserFactory.create(username="alice")
        product = ProductFactory.create(stock_on_hand=1000, stock_received=1000)
        sold_out = ProductFactory.create(stock_on_hand=0, stock_received=0)
        alice_token = str(RefreshToken.for_user(alice).access_token)
    receiver = SentryReceiver().start()
    env = _app_env(receiver=receiver, multiproc_dir=multiproc_dir)
    port = free_port()
    web_log, worker_log = workdir / "web.log", workdir / "worker.log"
    web: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None
    try:
        with web_log.open("wb") as web_out, worker_log.open("wb") as worker_out:
            web = subprocess.Popen(
                [
                    str(VENV_BIN / "gunicorn"),
                    "config.wsgi:application",
                    "-c",
                    "config/gunicorn.conf.py",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    str(GUNICORN_WORKERS),
                    "--threads",
                    "2",
                ],
                cwd=ROOT,
                env=env,
                stdout=web_out,
                stderr=subprocess.DEVNULL,
            )
            worker = subprocess.Popen(
                [
                    str(VENV_BIN / "celery"),
                    "--quiet",  # no start-up banner: stdout holds JSON lines only
                    "-A",
                    "config",
                    "worker",
                    "--pool=prefork",
                    "--concurrency=2",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "--loglevel=INFO",
                ],
                cwd=ROOT,
                env=env,
                stdout=worker_out,
                stderr=subprocess.DEVNULL,
            )
        base_url = f"http://127.0.0.1:{port}"

        def web_ready() -> bool:
            try:
                return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(web_ready, timeout_s=60, what="gunicorn to answer /healthz")
        wait_for(lambda: b" ready." in worker_log.read_bytes(), timeout_s=60, what="the Celery worker")
        yield LiveStack(
            base_url=base_url,
            receiver=receiver,
            web_log=web_log,
            worker_log=worker_log,
            multiproc_dir=multiproc_dir,
            alice_id=alice.pk,
            alice_token=alice_token,
            product_id=product.pk,
            sold_out_product_id=sold_out.pk,
        )
    finally:
        if web is not None:
            _stop(web)
        if worker is not None:
            # Cold shutdown: payment tasks are sleeping between retries; the test has what it needs.
            _stop(worker, signal.SIGQUIT)
        receiver.stop()
        broker.flushdb()
        with django_db_blocker.unblock():
            _empty_all_tables()
