"""The six failure modes as the workshop shows them: what happens, why, the twin's file, the fix's code, the score.

The fix is always the real shop's own code, named here by reference (`module:qualname`, or `file#function` for
JavaScript, or `file@NAME` for a settings block) and rendered from its source file when the page is shown, so
the page can never teach a copy that drifted from what the shop runs (tests/workshop/test_modes.py checks that
every reference still resolves).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Counter:
    """One audit counter: a count of violations, so zero is clean."""

    name: str
    label: str


@dataclass(frozen=True)
class Mode:
    slug: str
    title: str
    happens: str
    why: str
    twin_files: tuple[str, ...]
    fix: tuple[str, ...]
    counters: tuple[Counter, ...]
    patterns_doc: str

    @property
    def counter_names(self) -> list[str]:
        return [counter.name for counter in self.counters]

    @property
    def twin_prefix(self) -> str:
        return f"/workshop/twin/{self.slug}/"

    @property
    def docs(self) -> str:
        return f"docs/workshop/{self.slug}.md"


MODES: dict[str, Mode] = {
    mode.slug: mode
    for mode in [
        Mode(
            slug="races",
            title="Races in writes",
            happens=(
                "Twenty buyers place orders at once; some double-click, some cart two lines of the same product, "
                "and all of them want the three units of a scarce product. The twin sells the scarce units several "
                "times over, answers one click twice with two orders, and leaves half-written orders behind."
            ),
            why=(
                "The twin reads the stock, checks it in Python, and writes the order, its lines and the new stock "
                "as separate statements with no transaction, no row lock and no idempotency key: two requests that "
                "read the same stock both pass the check. The fix claims the key with a unique insert, runs the "
                "whole use case in one transaction, locks the product rows in a fixed order and re-checks the stock "
                "inside the lock."
            ),
            twin_files=("workshop/twins/races.py",),
            fix=(
                "orders.placement:order_placement",
                "orders.placement:do_order_create",
                "shop.stock:stock_lock_for_sale",
                "shop.stock:stock_take",
                "idempotency.services:idempotency_claim",
                "static/js/shop.js#enhanceBusyForm",
            ),
            counters=(
                Counter("duplicate_orders_per_key", "duplicate orders per key"),
                Counter("units_oversold", "units oversold"),
                Counter("orphan_rows", "orphan rows"),
            ),
            patterns_doc="docs/patterns/01-race-conditions.md",
        ),
        Mode(
            slug="n-plus-one",
            title="N+1 queries",
            happens=(
                "Shoppers list a category while it grows from 100 to 10,000 products. The twin's page runs two "
                "queries per product and returns every row; the fixed API runs the same few queries at any size."
            ),
            why=(
                "The twin loops over the products and, per row, follows the category foreign key and re-reads the "
                "stock: 2N+1 queries, unpaginated. The fix's selector states its query shape (the category in the "
                "same query) and the API pages with a cursor, at most 100 rows."
            ),
            twin_files=("workshop/twins/n_plus_one.py",),
            fix=(
                "shop.selectors:product_list",
                "shop.apis:ProductListApi",
                "core.pagination:CursorPagination",
            ),
            counters=(Counter("queries_per_request_growth", "queries per request growth, 100 to 10,000 rows"),),
            patterns_doc="docs/patterns/02-n-plus-one.md",
        ),
        Mode(
            slug="capacity",
            title="No pooling, no limits, no breaker",
            happens=(
                "A hundred customers check out while the payment provider takes a second per charge. The twin "
                "runs out of database connections and request threads: 500s, then requests that time out. The "
                "fixed path accepts every order and charges it in the background."
            ),
            why=(
                "The twin opens a fresh connection straight to PostgreSQL for every request and holds it while it "
                "calls the provider inline, with no timeout, no throttle and no circuit breaker. The fix borrows a "
                "pooled connection from PgBouncer for one transaction, throttles writes, and charges the card in a "
                "Celery task after commit, with timeouts, retries and a breaker."
            ),
            twin_files=("workshop/twins/capacity.py",),
            fix=(
                "config/settings.py@DATABASES",
                "orders.placement:enqueue_payment_after_commit",
                "payments.client:provider_request",
                "core.throttling:throttle_hit",
            ),
            counters=(
                Counter("responses_5xx", "5xx responses"),
                Counter("connection_errors", "connection errors and timeouts"),
            ),
            patterns_doc="docs/patterns/03-capacity.md",
        ),
        Mode(
            slug="authorization",
            title="Authentication without authorization",
            happens=(
                "Customers read their own orders; a few curious ones count up through order ids and read, then "
                "edit, other people's orders. The twin shows them everything; the fix answers 404."
            ),
            why=(
                "The twin checks that the caller is signed in, then fetches the order by id alone. The fix fetches "
                "every order from the caller's own orders, so someone else's id looks exactly like a missing one."
            ),
            twin_files=("workshop/twins/authorization.py",),
            fix=(
                "orders.selectors:order_queryset_for_customer",
                "orders.selectors:order_get_for_customer",
                "orders.apis:OrderDetailApi",
            ),
            counters=(Counter("records_leaked_to_other_users", "records leaked to other users"),),
            patterns_doc="docs/patterns/04-authorization.md",
        ),
        Mode(
            slug="frontend-state",
            title="Frontend state under concurrent use",
            happens=(
                "Customers edit an order in two tabs at once, and a real browser submits an edit whose request "
                "never comes back. The twin silently keeps the last save and spins forever; the fix shows a "
                "conflict screen and, after a bound, tells the customer where things stand."
            ),
            why=(
                "The twin's form carries no version, so the second save overwrites the first (last write wins), "
                "and its script waits on the request with no timeout. The fix writes only from the version the form "
                "was rendered with (412 becomes the conflict screen) and bounds every spinner."
            ),
            twin_files=("workshop/twins/frontend_state.py", "workshop/static/workshop/twins/frontend_state.js"),
            fix=(
                "orders.services:order_update_details",
                "orders.views:order_edit",
                "static/js/shop.js#enhanceBusyForm",
            ),
            counters=(
                Counter("lost_edits", "lost edits"),
                Counter("requests_never_resolved", "requests that never resolved"),
            ),
            patterns_doc="docs/patterns/05-frontend-state.md",
        ),
        Mode(
            slug="observability",
            title="No observability",
            happens=(
                "Customers place orders, and some orders carry a line the shop cannot take. The twin answers "
                "201 and stores an order without its lines; nothing is logged, counted or alerted. The fix refuses "
                "with a 400 that the access log, the metrics and the alerts all see."
            ),
            why=(
                "The twin wraps the line handling in `except Exception: pass`, so the failure disappears and a "
                "malformed record stays. The fix validates before writing (one error listing every problem), logs "
                "one line per request with its id and status, counts it in Prometheus, and the invariant checker "
                "pages someone about any malformed row that still gets in."
            ),
            twin_files=("workshop/twins/observability.py",),
            fix=(
                "orders.placement:check_order_lines",
                "observability.middleware:AccessLogMiddleware",
                "observability.invariants:check_orders_have_lines",
            ),
            counters=(
                Counter("failures_without_log_metric_or_alert", "failures that left no log, metric or alert"),
                Counter("malformed_records", "malformed records stored"),
            ),
            patterns_doc="docs/patterns/06-observability.md",
        ),
    ]
}


def mode_get(slug: str) -> Mode:
    try:
        return MODES[slug]
    except KeyError:
        raise KeyError(f"unknown workshop mode {slug!r}: use one of {', '.join(MODES)}") from None
