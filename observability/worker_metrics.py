"""A Celery worker's own metrics port: what its tasks count (payment attempts, failures) reaches Prometheus.

`make run` runs gunicorn and the worker on one host with one PROMETHEUS_MULTIPROC_DIR, so the web's /metrics
already adds the worker's values. In containers and pods each process tree has its own directory: a payment
attempt counted in a task would never show on any /metrics, and the dashboard's payments panel would stay empty.
With CELERY_METRICS_PORT set, the worker's main process serves the sum over its pool processes on that port,
behind the same access rule as /metrics (METRICS_TOKEN / METRICS_ALLOWED_IPS; hidden in production without them).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import structlog
from celery import signals
from django.conf import settings
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess

from core.metrics import multiprocess_dir
from observability.access import metrics_access_for

logger = structlog.get_logger(__name__)

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def worker_registry() -> CollectorRegistry:
    path = multiprocess_dir()
    if not path:
        return REGISTRY  # solo or threads pool: the counters live in this process
    registry = CollectorRegistry(auto_describe=False)
    multiprocess.MultiProcessCollector(registry, path=path)
    return registry


def metrics_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    access = metrics_access_for(
        authorization=str(environ.get("HTTP_AUTHORIZATION", "")), remote_addr=str(environ.get("REMOTE_ADDR", ""))
    )
    if environ.get("PATH_INFO", "/") not in {"/", "/metrics"} or access == "hidden":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    if access == "unauthorized":
        start_response(
            "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')]
        )
        return [b"Send Authorization: Bearer <METRICS_TOKEN>.\n"]
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [generate_latest(worker_registry())]


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True  # a slow scraper never keeps the worker from shutting down


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape every 15 s is noise; the worker logs its tasks


def serve_worker_metrics(port: int, addr: str) -> WSGIServer:
    server = make_server(addr, port, metrics_app, _ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="worker-metrics", daemon=True).start()
    logger.info("worker metrics listening", address=addr, port=server.server_port)
    return server


@signals.worker_init.connect
def _start_metrics_port(**_: Any) -> None:
    # worker_init runs once, in the worker's main process, before the pool forks its children.
    if settings.CELERY_METRICS_PORT:
        serve_worker_metrics(settings.CELERY_METRICS_PORT, settings.CELERY_METRICS_ADDR)


@signals.worker_process_shutdown.connect
def _mark_pool_process_dead(**_: Any) -> None:
    # A pool process that exits takes its live gauges out of the sum, as gunicorn's child_exit does for workers.
    if multiprocess_dir():
        multiprocess.mark_process_dead(os.getpid())
