"""gunicorn settings. Numbers come from the connection budget in docs/patterns/03-capacity.md."""

from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# gthread: each worker process serves `threads` requests at once; each thread keeps one PgBouncer connection.
worker_class = "gthread"
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Hung request: a worker silent for this long is killed and replaced (statement_timeout fires well before).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM: in-flight requests get this long to finish before the worker is stopped.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Slow leaks: workers are recycled, with jitter so they do not all restart at once.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "2000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "200"))
# Slowloris-style abuse: cap header sizes and the request line.
limit_request_line = 8190
limit_request_fields = 100
backlog = 2048
accesslog = None  # the app logs every request itself as one JSON line
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "hardened-shop"
