"""Gauges computed at scrape time: the state of things no single process counts.

Each source is read with a short timeout and fails alone: a down Redis costs the queue-depth gauge, not the
whole scrape. `shop_metrics_source_up{source}` says which sources answered, so a missing series is explained.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dj_database_url
import psycopg
import redis
import structlog
from celery import current_app
from django.conf import settings
from django.db import connection, transaction
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.health import run_checks
from observability.invariants import last_results
from payments.breaker import provider_breaker

logger = structlog.get_logger(__name__)

BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


@contextmanager
def _bounded_cursor() -> Iterator[Any]:
    """A cursor whose statements give up after a second: a slow scrape must not hold a database connection."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SELECT set_config('statement_timeout', '1000ms', true)")
        yield cursor


def _oldest_pending_payment() -> tuple[float, int]:
    """(age in seconds of the oldest pending_payment order, how many there are); uses order_pending_by_age."""
    with _bounded_cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0), count(*) "
            "FROM orders_order WHERE status = 'pending_payment'"
        )
        age, count = cursor.fetchone()
    return float(age), int(count)


def _mail_outbox() -> tuple[float, dict[str, int]]:
    """(age in seconds of the oldest unsent message, rows per status); uses mail_outbox_unsent_by_age."""
    with _bounded_cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0) FROM mail_outboxmessage "
            "WHERE status IN ('pending', 'sending')"
        )
        (age,) = cursor.fetchone()
        # Only the rows not sent (the partial index): sent rows pile up for ever and are not counted per scrape.
        cursor.execute(
            "SELECT status, count(*) FROM mail_outboxmessage "
            "WHERE status IN ('pending', 'sending', 'failed') GROUP BY status"
        )
        counts = {status: int(count) for status, count in cursor.fetchall()}
    return float(age), counts


def _queue_names() -> list[str]:
    # The project's Celery app (config/celery.py sets it as the default): observability never imports config.
    names = {current_app.conf.task_default_queue or "celery"}
    for queue in current_app.conf.task_queues or []:
        names.add(queue.name)
    return sorted(names)


def _celery_queue_lengths() -> dict[str, int]:
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL, socket_timeout=settings.REDIS_TIMEOUT_S, socket_connect_timeout=0.5
    )
    try:
        lengths: dict[str, int] = {}
        for name in _queue_names():
            # kombu's Redis transport keeps one list per priority step: "celery", "celery\x06\x163", ...
            keys = [name, *(f"{name}\x06\x16{step}" for step in (3, 6, 9))]
            pipe = client.pipeline()
            for key in keys:
                pipe.llen(key)
            lengths[name] = sum(int(length) for length in pipe.execute())
        return lengths
    finally:
        client.close()


def _pgbouncer_pools() -> list[dict[str, Any]]:
    """SHOW POOLS and SHOW DATABASES from PgBouncer's admin console, for the app's own database only."""
    url = settings.METRICS_PGBOUNCER_URL
    if not url:
        return []
    parsed = dj_database_url.parse(url)
    app_database = settings.DATABASES["default"]["NAME"]
    with psycopg.connect(
        host=parsed["HOST"],
        port=parsed["PORT"],
        user=parsed["USER"],
        password=parsed.get("PASSWORD") or None,
        dbname=parsed["NAME"] or "pgbouncer",
        connect_timeout=1,
        autocommit=True,
    ) as console:
        # The admin console speaks only the simple query protocol.
        pools = console.cursor(row_factory=psycopg.rows.dict_row).execute("SHOW POOLS", prepare=False).fetchall()
        databases = console.cursor(row_factory=psycopg.rows.dict_row).execute("SHOW DATABASES", prepare=False)
        pool_sizes = {row["name"]: row["pool_size"] for row in databases.fetchall()}
    rows = []
    for pool in pools:
        if pool["database"] != app_database:
            continue
        rows.append({**pool, "pool_size": pool_sizes.get(pool["database"], 0)})
    return rows


def _readiness() -> dict[str, bool]:
    # Each check runs in its own thread (with its own connection): the database check closes the connection
    # it used, which must never be the request's (it would end the request's transaction mid-flight).
    return {name: outcome == "ok" for name, outcome in run_checks().items()}


def _invariant_results() -> dict[str, Any] | None:
    return last_results()


class ShopStateCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        sources = GaugeMetricFamily(
            "shop_metrics_source_up", "Whether a scrape-time source answered (1) or failed (0).", labels=["source"]
        )
        yield from self._guarded("readiness", sources, self._readiness)
        yield from self._guarded("orders", sources, self._orders)
        yield from self._guarded("mail", sources, self._mail)
        yield from self._guarded("celery", sources, self._celery)
        yield from self._guarded("pgbouncer", sources, self._pgbouncer)
        yield from self._guarded("breakers", sources, self._breakers)
        yield from self._guarded("invariants", sources, self._invariants)
        yield sources

    def _guarded(self, name: str, sources: GaugeMetricFamily, read: Callable[[], list[Metric]]) -> Iterator[Metric]:
        try:
            families = read()
        except Exception as error:
            logger.warning("metrics source failed", source=name, error=type(error).__name__)
            sources.add_metric([name], 0)
            return
        sources.add_metric([name], 1)
        yield from families

    def _readiness(self) -> list[Metric]:
        results = _readiness()
        ready = GaugeMetricFamily("shop_ready", "1 when /readyz would answer 200 (database, cache and broker).")
        ready.add_metric([], 1 if all(results.values()) else 0)
        dependency = GaugeMetricFamily("shop_dependency_up", "Readiness check per dependency.", labels=["dependency"])
        for name, ok in results.items():
            dependency.add_metric([name], 1 if ok else 0)
        return [ready, dependency]

    def _orders(self) -> list[Metric]:
        age, count = _oldest_pending_payment()
        oldest = GaugeMetricFamily(
            "shop_oldest_pending_payment_age_seconds", "Age of the oldest order still in pending_payment (0: none)."
        )
        oldest.add_metric([], age)
        pending = GaugeMetricFamily("shop_pending_payment_orders", "Orders waiting in pending_payment.")
        pending.add_metric([], count)
        return [oldest, pending]

    def _mail(self) -> list[Metric]:
        age, counts = _mail_outbox()
        oldest = GaugeMetricFamily(
            "shop_mail_oldest_pending_age_seconds",
            "Age of the oldest outbox message not yet accepted by the SMTP server (pending or sending; 0: none).",
        )
        oldest.add_metric([], age)
        rows = GaugeMetricFamily(
            "shop_mail_outbox_messages",
            "Outbox rows not sent, by status (sent ones: shop_mail_sent_total).",
            labels=["status"],
        )
        for status in ("pending", "sending", "failed"):
            rows.add_metric([status], counts.get(status, 0))
        return [oldest, rows]

    def _celery(self) -> list[Metric]:
        depth = GaugeMetricFamily("shop_celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"])
        for queue, length in _celery_queue_lengths().items():
            depth.add_metric([queue], length)
        return [depth]

    def _pgbouncer(self) -> list[Metric]:
        labels = ["database", "user"]
        families = {
            "cl_active": GaugeMetricFamily(
                "shop_pgbouncer_clients_active", "Clients linked to a server.", labels=labels
            ),
            "cl_waiting": GaugeMetricFamily(
                "shop_pgbouncer_clients_waiting", "Clients waiting for a server connection.", labels=labels
            ),
            "sv_active": GaugeMetricFamily(
                "shop_pgbouncer_servers_active", "Server connections in use.", labels=labels
            ),
            "sv_idle": GaugeMetricFamily("shop_pgbouncer_servers_idle", "Server connections idle.", labels=labels),
            "pool_size": GaugeMetricFamily("shop_pgbouncer_pool_size", "Configured pool size.", labels=labels),
        }
        max_wait = GaugeMetricFamily(
            "shop_pgbouncer_max_wait_seconds", "How long the oldest waiting client has waited.", labels=labels
        )
        for pool in _pgbouncer_pools():
            key = [pool["database"], pool["user"]]
            for column, family in families.items():
                family.add_metric(key, float(pool[column]))
            max_wait.add_metric(key, float(pool["maxwait"]) + float(pool.get("maxwait_us", 0)) / 1_000_000)
        return [*families.values(), max_wait]

    def _breakers(self) -> list[Metric]:
        state = GaugeMetricFamily(
            "shop_circuit_breaker_state", "Circuit breaker state: 0 closed, 1 half-open, 2 open.", labels=["breaker"]
        )
        # The breaker's state lives in Redis, shared by every worker: this reads the one truth.
        current = provider_breaker().state()
        if current not in BREAKER_STATE_VALUES:
            raise RuntimeError(f"breaker state unreadable: {current}")
        state.add_metric([settings.PAYMENT_BREAKER_NAME], BREAKER_STATE_VALUES[current])
        return [state]

    def _invariants(self) -> list[Metric]:
        results = _invariant_results()
        violations = GaugeMetricFamily(
            "shop_invariant_violations", "Rows breaking a data invariant at the last check.", labels=["invariant"]
        )
        last_run = GaugeMetricFamily(
            "shop_invariant_last_run_timestamp_seconds", "When the invariant checker last finished (Unix time)."
        )
        if results is None:
            return [violations, last_run]
        for name, outcome in results["invariants"].items():
            violations.add_metric([name], outcome["count"])
        last_run.add_metric([], results["checked_at"])
        return [violations, last_run]
