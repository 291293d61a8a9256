"""gunicorn settings. Numbers come from the connection budget in docs/patterns/03-capacity.md.

Budget: workers x threads = 3 x 4 = 12 request threads per instance, each holding at most one client
connection to PgBouncer; plus Celery concurrency 2 = 14 clients, within PgBouncer's default_pool_size 20.
Raise workers or threads only together with the pool sizes in deploy/pgbouncer/pgbouncer.ini.template.

SIGTERM (a deploy, `docker stop`, Ctrl-C under honcho) drains: the arbiter stops accepting, every worker
finishes its in-flight requests for up to graceful_timeout, then exits. Only SIGINT/SIGQUIT stop at once.
"""

from __future__ import annotations

import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# gthread: each worker process serves `threads` requests at once; each thread keeps one PgBouncer connection.
# Overload: this gthread worker also measures how long each request waited for a thread, so the shop can shed
# the ones that waited too long (core/shedding.py).
worker_class = "core.shedding.QueueTimedThreadWorker"
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# Hung request: a worker silent for this long is killed and replaced. Everything below it fires first:
# PgBouncer query_wait_timeout 5 s, statement_timeout 5 s, lock_timeout 3 s, Redis 0.5 s, connect 3 s.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# SIGTERM: in-flight requests get this long to finish before the worker is stopped.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
# Idle keep-alive connections are closed after this, so they do not pin threads (behind a proxy: above its own).
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Slow leaks: workers are recycled, with jitter so they do not all restart at once.
# The jitter is of the same order as the limit: with a small jitter all workers restart within seconds of
# each other under load (measured: p95 6.4 s and -20% throughput during such a wave in the stress run).
# Recycling under load: a worker retired by max_requests used to re-import Django in its replacement, 4-8 s of
# CPU on a saturated machine while it served nothing; three retiring within seconds of each other stalled the
# shop for 5 s (measured under `make loadtest-stress`). Preloaded, the master imports the app once and a new
# worker is a fork, ready in milliseconds. Nothing connects at import (the database, Redis, the provider's
# client and Sentry's transport all open lazily, per process).
preload_app = os.environ.get("GUNICORN_PRELOAD", "true").lower() == "true"
# All retiring at once: a worker reaching its limit retires only while no sibling is (core/recycling.py;
# GUNICORN_RECYCLE_ONE_AT_A_TIME, on): measured, the three retired within a second of each other at 600 users
# and for four seconds no worker took a connection.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "5000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "2500"))
# Slowloris-style abuse: cap header sizes and the request line.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190
backlog = 2048
# Heartbeat files on tmpfs: a worker blocked on a slow disk is not mistaken for a hung one.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
accesslog = None  # the app logs every request itself as one JSON line
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
proc_name = "hardened-shop"


def pre_request(worker: object, req: object) -> None:
    """Unread body: a body over DATA_UPLOAD_MAX_MEMORY_SIZE is answered 413 without being read
    (core/middleware.py). On a kept-alive connection its bytes would then sit on the socket, where gunicorn
    drains what it can or reads them as the next request; so that answer says `Connection: close` and the
    connection closes after it. (A Connection header from Django would be dropped: it is hop-by-hop.)"""
    # Django's settings exist in the worker, not when gunicorn reads this file: imported here, per request.
    from django.conf import settings

    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    declared = next((value for name, value in req.headers if name == "CONTENT-LENGTH"), "")  # type: ignore[attr-defined]
    if limit is not None and declared.isdigit() and int(declared) > limit:
        req.must_close = True  # type: ignore[attr-defined]


def child_exit(server: object, worker: object) -> None:
    """Metrics across workers: a dead worker's live gauges leave the sum (core/metrics.py)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Imported only when multiprocess metrics are on: this config file is read before Django is set up.
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)  # type: ignore[attr-defined]


def on_exit(server: object) -> None:
    """The workers' shared retirement lock (core/recycling.py) goes with the master."""
    from core.recycling import retire_lock_path

    # The workers name it from cfg.worker_tmp_dir (which a --worker-tmp-dir flag may have changed): so does this.
    tmp_dir = server.cfg.worker_tmp_dir  # type: ignore[attr-defined]
    retire_lock_path(master_pid=os.getpid(), tmp_dir=tmp_dir).unlink(missing_ok=True)
