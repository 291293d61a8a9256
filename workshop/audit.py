"""The workshop's data audit: each mode's counters for the twin and the fixed path. A counter counts violations.

Two sources, as in the load suite's audit (loadtests/audit.py): the ledger the clients wrote (JSON lines: what
each request was told) and the database (what is really there), each read only through the side's tags.

- races: `duplicate_orders_per_key` (ledger: order ids answered for one customer and Idempotency-Key, beyond
  the first), `units_oversold` (database: units held by live orders plus units on hand, beyond units received),
  `orphan_rows` (database: orders without lines, without a number, or whose total is not their lines' sum).
- n-plus-one: `queries_per_request_growth` (ledger: the list's query count from Server-Timing at the large
  catalog minus at the small one).
- capacity: `responses_5xx`, `connection_errors` (ledger: 5xx answers; requests refused, reset or timed out).
- authorization: `records_leaked_to_other_users` (ledger: other people's orders answered 2xx; database: orders a
  stranger edited).
- frontend-state: `lost_edits` (ledger + database: edits the client was told were saved that are not in the
  order), `requests_never_resolved` (the browser script: a hung save whose page never told the user anything).
- observability: `failures_without_log_metric_or_alert` (ledger: a request carrying a bad line answered 2xx, so
  logged and counted as a success), `malformed_records` (ledger + database: orders stored without lines, or
  with fewer lines than were asked for).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.db.models import Count, DecimalField, F, Q, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.models import STATUSES_HOLDING_STOCK, Order
from workshop.modes import mode_get
from workshop.services import side_accounts, side_products
from workshop.tags import SIDES, Side

Counters = dict[str, int]
# A twin request still between its order row and its lines is not an orphan yet: the audit looks at settled rows.
SETTLE_S = 3


def ledger_entries(ledger_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(ledger_dir.glob("*.jsonl")):
        with path.open() as handle:
            for line in handle:
                try:
                    yield json.loads(line)
                except ValueError:
                    continue  # the line a writer is still writing


def _side_orders(seat: str, mode: str, side: Side) -> Any:
    settled = timezone.now() - timedelta(seconds=SETTLE_S)
    return Order.objects.filter(customer__in=side_accounts(seat, mode, side), created_at__lt=settled)


def _half_written(orders: Any) -> Any:
    money = DecimalField(max_digits=12, decimal_places=2)
    return orders.annotate(
        line_count=Count("lines"),
        line_sum=Coalesce(Sum("lines__line_total"), Value(Decimal("0.00")), output_field=money),
    ).filter(Q(line_count=0) | Q(number__isnull=True) | ~Q(total=F("line_sum")))


# --- One function per mode: (seat, side, entries of that side) -> counters ---------------------------------


def _races(seat: str, side: Side, entries: list[dict[str, Any]]) -> Counters:
    answered: dict[tuple[str, str], set[int]] = defaultdict(set)
    for entry in entries:
        if entry["kind"] == "order" and entry.get("order_id"):
            answered[(entry["username"], entry["key"])].add(int(entry["order_id"]))
    held = side_products(seat, "races", side).annotate(
        held=Coalesce(Sum("order_lines__quantity", filter=Q(order_lines__order__status__in=STATUSES_HOLDING_STOCK)), 0)
    )
    oversold = sum(max(0, p.stock_on_hand + p.held - p.stock_received) for p in held)
    return {
        "duplicate_orders_per_key": sum(len(ids) - 1 for ids in answered.values()),
        "units_oversold": oversold,
        "orphan_rows": _half_written(_side_orders(seat, "races", side)).count(),
    }


def _n_plus_one(seat: str, side: Side, entries: list[dict[str, Any]]) -> Counters:
    by_rows: dict[int, list[int]] = defaultdict(list)
    for entry in entries:
        if entry["kind"] == "queries" and entry.get("queries") is not None:
            by_rows[int(entry["rows"])].append(int(entry["queries"]))
    if len(by_rows) < 2:
        return {"queries_per_request_growth": 0}  # the catalog has not grown yet
    small, large = by_rows[min(by_rows)], by_rows[max(by_rows)]
    return {"queries_per_request_growth": max(0, max(large) - min(small))}


def _capacity(seat: str, side: Side, entries: list[dict[str, Any]]) -> Counters:
    requests = [entry for entry in entries if entry["kind"] == "request"]
    return {
        "responses_5xx": sum(1 for entry in requests if entry["status"] >= 500),
        "connection_errors": sum(1 for entry in requests if entry["status"] == 0),
    }


def _authorization(seat: str, side: Side, entries: list[dict[str, Any]]) -> Counters:
    leaked = {
        int(entry["order_id"])
        for entry in entries
        if entry["kind"] == "probe" and 200 <= entry["status"] < 300 and entry["username"] != entry["owner"]
    }
    tampered = Order.objects.filter(
        customer__in=side_accounts(seat, "authorization", side), note__startswith="tampered"
    )
    leaked |= set(tampered.values_list("id", flat=True))
    return {"records_leaked_to_other_users": len(leaked)}


def _frontend_state(seat: str, side: Side, entries: list[dict[str, Any]]) -> Counters:
    edits = sorted((entry for entry in entries if entry["kind"] == "edit" and entry["accepted"]), key=lambda e: e["t"])
    # The last accepted edit of a field is what the order must show; an earlier one was legitimately replaced.
    last: dict[tuple[int, str], dict[str, Any]] = {}
    for edit in edits:
        last[(int(edit["order_id"]), edit["field"])] = edit
    orders = Order.objects.in_bulk({order_id for order_id, _ in last})
    lost = sum(
        1
        for (order_id, field), edit in last.items()
        if order_id in orders and str(getattr(orders[order_id], field)) != edit["value"]
    )
    browser = [entry for entry in entries if entry["kind"] == "spinner"]
    return {"lost_edits": lost, "requests_never_resolved": sum(1 for entry in browser if not entry["resolved"])}


def _observability(seat: str, side: Side, entries: list[dict[str, Any]]) -> Counters:
    placed = [entry for entry in entries if entry["kind"] == "order"]
    silent = sum(1 for entry in placed if entry["bad"] and 200 <= entry["status"] < 300)
    asked = {int(entry["order_id"]): int(entry["lines"]) for entry in placed if entry.get("order_id")}
    orders = _side_orders(seat, "observability", side).annotate(line_count=Count("lines"))
    malformed = set(_half_written(_side_orders(seat, "observability", side)).values_list("id", flat=True))
    malformed |= {order.pk for order in orders if order.pk in asked and order.line_count < asked[order.pk]}
    return {"failures_without_log_metric_or_alert": silent, "malformed_records": len(malformed)}


AUDITS = {
    "races": _races,
    "n-plus-one": _n_plus_one,
    "capacity": _capacity,
    "authorization": _authorization,
    "frontend-state": _frontend_state,
    "observability": _observability,
}


def audit(*, seat: str, mode: str, ledger_dir: Path, sides: tuple[Side, ...] = SIDES) -> dict[str, Counters]:
    """The mode's counters for each side, in the mode's counter order (the scorecard's order)."""
    names = mode_get(mode).counter_names
    entries = list(ledger_entries(ledger_dir))
    result: dict[str, Counters] = {}
    for side in sides:
        counters = AUDITS[mode](seat, side, [entry for entry in entries if entry.get("side") == side])
        result[side] = {name: int(counters[name]) for name in names}
    return result
