"""The Celery worker's own metrics port: what its tasks count reaches Prometheus, behind the /metrics rule.

In containers and pods the worker has its own PROMETHEUS_MULTIPROC_DIR, so without this port a payment attempt
counted in a task would show on no /metrics at all (the dashboard's payments panel stayed empty). The compose
smoke test scrapes a real worker's port with a real Prometheus; these tests pin the access rule.
"""

from __future__ import annotations

from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

import httpx
import pytest

from core.metrics import record_payment_attempt
from observability.worker_metrics import serve_worker_metrics


@pytest.fixture
def worker_port() -> Iterator[str]:
    server: WSGIServer = serve_worker_metrics(0, "127.0.0.1")
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_the_worker_port_serves_what_its_tasks_counted(worker_port: str, settings) -> None:
    settings.METRICS_TOKEN = ""
    before = _attempts(httpx.get(f"{worker_port}/metrics").text)
    record_payment_attempt("charge")
    after = _attempts(httpx.get(f"{worker_port}/metrics").text)
    assert after == before + 1


def test_production_without_a_token_hides_the_port(worker_port: str, settings) -> None:
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_IPS = []
    assert httpx.get(f"{worker_port}/metrics").status_code == 404


def test_with_a_token_only_the_scraper_reads_it(worker_port: str, settings) -> None:
    settings.PRODUCTION = True
    settings.METRICS_TOKEN = "scraper-token"
    refused = httpx.get(f"{worker_port}/metrics", headers={"Authorization": "Bearer wrong"})
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
    allowed = httpx.get(f"{worker_port}/metrics", headers={"Authorization": "Bearer scraper-token"})
    assert allowed.status_code == 200
    assert "shop_payment_attempts_total" in allowed.text


def _attempts(text: str) -> float:
    for line in text.splitlines():
        if line.startswith('shop_payment_attempts_total{kind="charge"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
