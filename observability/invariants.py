"""Data invariants: facts about the database that must hold whatever the code did.

"The database may have been writing malformed records for hours before anyone noticed." Constraints stop most
of that at the door; this audit catches what constraints cannot express (sums across tables, ages, state pairs)
and what slipped past them (a dropped constraint, a raw SQL fix, a bug in a migration).

One function per invariant, each a single aggregate SQL statement, all read from one REPEATABLE READ snapshot
so that orders being placed while the audit runs cannot produce a false alarm. Used by
`manage.py check_invariants`, by the periodic Celery task, and by the load suite.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction

from observability.sentry import report_invariant_violation
from orders.models import STATUSES_HOLDING_STOCK, STATUSES_WITHOUT_STOCK, OrderStatus
from payments.models import PaymentStatus

logger = structlog.get_logger(__name__)

MAX_LISTED_VIOLATIONS = 20
RESULTS_CACHE_KEY = "observability:invariants:last"

# Stock leaves the shelf when an order is placed and comes back, in the same transaction, when the order can no
# longer be paid or shipped (payment_failed, cancelled). So live orders hold their units and closed ones none.
LIVE_STATUSES = sorted(status.value for status in STATUSES_HOLDING_STOCK)
CLOSED_STATUSES = sorted(status.value for status in STATUSES_WITHOUT_STOCK)

# Which payment states each order state may have. The order and its payment move in one transaction.
ALLOWED_PAYMENT_STATES: dict[str, set[str]] = {
    OrderStatus.PENDING_PAYMENT: {PaymentStatus.PENDING},
    OrderStatus.PAID: {PaymentStatus.CAPTURED},
    OrderStatus.FULFILLED: {PaymentStatus.CAPTURED},
    OrderStatus.PAYMENT_FAILED: {PaymentStatus.FAILED},
    # A paid order that was cancelled is captured until its refund task runs (see settings grace), then refunded.
    OrderStatus.CANCELLED: {PaymentStatus.PENDING, PaymentStatus.FAILED, PaymentStatus.REFUNDED},
}


@dataclass
class InvariantResult:
    name: str
    description: str
    count: int = 0
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.count == 0

    @property
    def detail(self) -> str:
        if self.ok:
            return "ok"
        shown = "; ".join(self.violations[:3])
        more = f" (+{self.count - 3} more)" if self.count > 3 else ""
        return f"{self.count} violation(s): {shown}{more}"


def _rows(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return list(cursor.fetchall())


def _result(name: str, description: str, rows: list[tuple[Any, ...]], describe: Callable[..., str]) -> InvariantResult:
    # Each query returns every violating row with a total count in the last column (count(*) OVER ()).
    count = int(rows[0][-1]) if rows else 0
    return InvariantResult(
        name=name,
        description=description,
        count=count,
        violations=[describe(*row[:-1]) for row in rows[:MAX_LISTED_VIOLATIONS]],
    )


def check_stock_conservation() -> InvariantResult:
    """Every unit received is on the shelf or held by a live order (pending_payment, paid, fulfilled)."""
    rows = _rows(
        """
        SELECT p.sku, p.stock_received, p.stock_on_hand, coalesce(sold.quantity, 0), count(*) OVER ()
        FROM shop_product p
        LEFT JOIN (
            SELECT l.product_id, sum(l.quantity) AS quantity
            FROM orders_orderline l JOIN orders_order o ON o.id = l.order_id
            WHERE o.status = ANY(%s)
            GROUP BY l.product_id
        ) sold ON sold.product_id = p.id
        WHERE p.stock_received <> p.stock_on_hand + coalesce(sold.quantity, 0)
        ORDER BY p.id LIMIT %s
        """,
        [LIVE_STATUSES, MAX_LISTED_VIOLATIONS],
    )
    return _result(
        "stock_conservation",
        "received = on hand + held by live orders (payment_failed and cancelled hold none)",
        rows,
        lambda sku, received, on_hand, held: (
            f"{sku}: received {received} != on hand {on_hand} + held by live orders {held}"
        ),
    )


def check_closed_orders_hold_no_stock() -> InvariantResult:
    """An order that can no longer be paid has given its units back (and a live one has not), once."""
    rows = _rows(
        """
        SELECT id, status, count(*) OVER () FROM orders_order
        WHERE (status = ANY(%s) AND stock_released_at IS NULL)
           OR (status = ANY(%s) AND stock_released_at IS NOT NULL)
        ORDER BY id LIMIT %s
        """,
        [CLOSED_STATUSES, LIVE_STATUSES, MAX_LISTED_VIOLATIONS],
    )
    return _result(
        "closed_orders_hold_no_stock",
        "payment_failed and cancelled orders returned their stock; live orders did not",
        rows,
        lambda order, status: (
            f"order {order} is {status} but holds its stock"
            if status in CLOSED_STATUSES
            else f"order {order} is {status} but is marked as having returned its stock"
        ),
    )


def check_no_negative_stock() -> InvariantResult:
    rows = _rows(
        """SELECT sku, stock_on_hand, count(*) OVER () FROM shop_product WHERE stock_on_hand < 0
        ORDER BY id LIMIT %s""",
        [MAX_LISTED_VIOLATIONS],
    )
    return _result("no_negative_stock", "stock_on_hand >= 0", rows, lambda sku, on_hand: f"{sku}: {on_hand}")


def check_one_order_per_idempotency_key() -> InvariantResult:
    rows = _rows(
        """
        SELECT customer_id, idempotency_key, count(*), count(*) OVER ()
        FROM orders_order GROUP BY customer_id, idempotency_key HAVING count(*) > 1
        ORDER BY customer_id LIMIT %s
        """,
        [MAX_LISTED_VIOLATIONS],
    )
    return _result(
        "one_order_per_idempotency_key",
        "at most one order per (customer, Idempotency-Key)",
        rows,
        lambda customer, key, orders: f"customer {customer} key {key[:40]!r}: {orders} orders",
    )


def check_orders_have_lines() -> InvariantResult:
    rows = _rows(
        """
        SELECT o.id, count(*) OVER () FROM orders_order o
        WHERE NOT EXISTS (SELECT 1 FROM orders_orderline l WHERE l.order_id = o.id)
        ORDER BY o.id LIMIT %s
        """,
        [MAX_LISTED_VIOLATIONS],
    )
    return _result("orders_have_lines", "every order has at least one line", rows, lambda order: f"order {order}")


def check_lines_have_orders() -> InvariantResult:
    rows = _rows(
        """
        SELECT l.id, l.order_id, count(*) OVER () FROM orders_orderline l
        LEFT JOIN orders_order o ON o.id = l.order_id WHERE o.id IS NULL
        ORDER BY l.id LIMIT %s
        """,
        [MAX_LISTED_VIOLATIONS],
    )
    return _result(
        "lines_have_orders",
        "every order line belongs to an existing order",
        rows,
        lambda line, order: f"line {line} -> missing order {order}",
    )


def check_order_totals() -> InvariantResult:
    """Order total = sum of its line totals, and each line total = unit price x quantity."""
    rows = _rows(
        """
        SELECT o.id, o.total, sum(l.line_total),
               bool_and(l.line_total = l.unit_price * l.quantity), count(*) OVER ()
        FROM orders_order o JOIN orders_orderline l ON l.order_id = o.id
        GROUP BY o.id, o.total
        HAVING o.total <> sum(l.line_total) OR NOT bool_and(l.line_total = l.unit_price * l.quantity)
        ORDER BY o.id LIMIT %s
        """,
        [MAX_LISTED_VIOLATIONS],
    )
    return _result(
        "order_totals_match_lines",
        "total = sum of line totals; line total = unit price x quantity",
        rows,
        lambda order, total, lines_sum, lines_ok: (
            f"order {order}: total {total} != lines {lines_sum}"
            if lines_ok
            else f"order {order}: a line total is wrong"
        ),
    )


def check_no_stale_pending_payment() -> InvariantResult:
    max_age_s = settings.INVARIANT_PENDING_PAYMENT_MAX_AGE_S
    rows = _rows(
        """
        SELECT id, extract(epoch FROM now() - created_at)::bigint, count(*) OVER () FROM orders_order
        WHERE status = 'pending_payment' AND created_at < now() - make_interval(secs => %s)
        ORDER BY created_at LIMIT %s
        """,
        [max_age_s, MAX_LISTED_VIOLATIONS],
    )
    return _result(
        "no_stale_pending_payment",
        f"no order waits in pending_payment longer than {max_age_s}s",
        rows,
        lambda order, age: f"order {order}: pending for {age}s",
    )


def check_payments_match_orders() -> InvariantResult:
    """Every order has its one payment row, for its amount, in a state its own state allows."""
    pairs = [(order, payment) for order, allowed in ALLOWED_PAYMENT_STATES.items() for payment in allowed]
    rows = _rows(
        """
        WITH allowed(order_status, payment_status) AS (SELECT * FROM unnest(%s::text[], %s::text[]))
        SELECT o.id, o.status, p.status, o.total, p.amount, count(*) OVER ()
        FROM orders_order o LEFT JOIN payments_payment p ON p.order_id = o.id
        WHERE p.id IS NULL
           OR p.amount <> o.total
           OR p.currency <> o.currency
           OR (
                NOT EXISTS (SELECT 1 FROM allowed a WHERE a.order_status = o.status AND a.payment_status = p.status)
                -- Refund owed: a cancelled paid order stays captured until its refund task has run.
                AND NOT (o.status = 'cancelled' AND p.status = 'captured'
                         AND o.cancelled_at > now() - make_interval(secs => %s))
           )
        ORDER BY o.id LIMIT %s
        """,
        [
            [order for order, _ in pairs],
            [payment for _, payment in pairs],
            settings.INVARIANT_REFUND_GRACE_S,
            MAX_LISTED_VIOLATIONS,
        ],
    )

    def describe(order: int, order_status: str, payment_status: str | None, total: Any, amount: Any) -> str:
        if payment_status is None:
            return f"order {order} ({order_status}): no payment row"
        if amount != total:
            return f"order {order}: payment amount {amount} != total {total}"
        return f"order {order} is {order_status} but its payment is {payment_status}"

    return _result("payments_match_orders", "one payment per order, matching amount and state", rows, describe)


def check_mail_sent_once() -> InvariantResult:
    """Every mail event has exactly one outbox row, and that row is sent (or still pending within its grace).

    A given-up row (refused, or out of attempts) breaks it: somebody was promised a message that never went out.
    A withdrawn row does not (the event stopped warranting it, mail/services.py). Two rows for one event would
    mean the unique constraints were dropped: the customer got the message twice.

    Order events are also counted from the orders' side: each state an order reached owes its customer (when
    they have an address) one row for that event: every order order_placed, a paid one (paid_at) order_paid,
    and payment_failed, cancelled and fulfilled orders their notice. The row commits with the state change, so
    a missing one is a state change that skipped its mail (no grace). Orders older than the first order with mail
    in this database (placed before order mail was wired) were promised nothing and are not counted.
    """
    grace_s = settings.INVARIANT_MAIL_GRACE_S
    rows = _rows(
        """
        SELECT kind, event, ref, status, age, count(*) OVER () FROM (
            SELECT 'unsent' AS kind, event, id::text AS ref, status,
                   extract(epoch FROM now() - created_at)::bigint AS age, id AS sort_key
            FROM mail_outboxmessage
            WHERE status = 'failed'
               OR (status IN ('pending', 'sending') AND created_at < now() - make_interval(secs => %s))
            UNION ALL
            SELECT 'doubled', event, coalesce('order ' || order_id::text, event_key), count(*)::text, 0, min(id)
            FROM mail_outboxmessage
            GROUP BY event, coalesce('order ' || order_id::text, event_key) HAVING count(*) > 1
            UNION ALL
            SELECT 'missing', owed.event, 'order ' || o.id::text, o.status, 0, o.id
            FROM orders_order o
            JOIN accounts_user u ON u.id = o.customer_id AND u.email <> ''
            CROSS JOIN LATERAL (VALUES
                ('order_placed', true),
                ('order_paid', o.paid_at IS NOT NULL),
                ('payment_failed', o.status = %s),
                ('order_cancelled', o.status = %s),
                ('order_fulfilled', o.status = %s)
            ) AS owed (event, is_owed)
            WHERE owed.is_owed
              AND o.id >= (SELECT min(order_id) FROM mail_outboxmessage)
              AND NOT EXISTS (
                  SELECT 1 FROM mail_outboxmessage m WHERE m.order_id = o.id AND m.event = owed.event
              )
        ) problems
        ORDER BY sort_key LIMIT %s
        """,
        [
            grace_s,
            OrderStatus.PAYMENT_FAILED.value,
            OrderStatus.CANCELLED.value,
            OrderStatus.FULFILLED.value,
            MAX_LISTED_VIOLATIONS,
        ],
    )

    def describe(kind: str, event: str, ref: str, status: str, age: int) -> str:
        if kind == "doubled":
            return f"{event} for {ref}: {status} messages"
        if kind == "missing":
            return f"{event} for {ref} ({status}): no message promised"
        return f"message {ref} ({event}) is {status} after {age}s"

    return _result(
        "mail_sent_once",
        f"one outbox row per mail event (each order state reached included), sent (or pending less than {grace_s}s)",
        rows,
        describe,
    )


INVARIANTS: list[Callable[[], InvariantResult]] = [
    check_stock_conservation,
    check_no_negative_stock,
    check_one_order_per_idempotency_key,
    check_orders_have_lines,
    check_lines_have_orders,
    check_order_totals,
    check_no_stale_pending_payment,
    check_payments_match_orders,
    check_closed_orders_hold_no_stock,
    check_mail_sent_once,
]


def check_all() -> list[InvariantResult]:
    """Run every invariant on one consistent, read-only snapshot of the database."""
    starts_transaction = not connection.in_atomic_block
    with transaction.atomic(), connection.cursor() as cursor:
        if starts_transaction:
            # One snapshot: an order committing between two checks cannot look half-written to the audit.
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        # A huge table must not turn the audit into a long-running transaction that holds back vacuum.
        cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{settings.INVARIANT_TIMEOUT_S}s"])
        return [check() for check in INVARIANTS]


def results_as_dict(results: list[InvariantResult], *, checked_at: float | None = None) -> dict[str, Any]:
    """The shape the --json option prints and the load suite reads."""
    return {
        "ok": all(result.ok for result in results),
        "checked_at": checked_at if checked_at is not None else time.time(),
        "invariants": {result.name: {**asdict(result), "ok": result.ok, "detail": result.detail} for result in results},
    }


def publish_results(results: list[InvariantResult]) -> dict[str, Any]:
    """Export the outcome: kept in the cache for /metrics, and one Sentry event per broken invariant."""
    summary = results_as_dict(results)
    try:
        cache.set(RESULTS_CACHE_KEY, summary, timeout=None)
    except Exception:
        # Redis down: the audit's verdict still stands (exit code, Sentry); only the gauge goes stale.
        logger.warning("could not store invariant results for /metrics", exc_info=True)
    for result in results:
        if not result.ok:
            report_invariant_violation(invariant=result.name, detail=result.detail, violations=result.violations)
    return summary


def last_results() -> dict[str, Any] | None:
    results: dict[str, Any] | None = cache.get(RESULTS_CACHE_KEY)
    return results
