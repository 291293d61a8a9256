"""The audit after a load run: is the data still right? Nothing lost, nothing doubled, nothing leaked.

Two sources of truth are compared:
- the client-side ledger (JSON lines the locust users wrote: every order they saw accepted, with its
  Idempotency-Key, and every probe of someone else's order), and
- the database, through `manage.py check_invariants --json` (stock conservation over live orders, closed
  orders holding no stock, no negative stock, one order per key, lines and payments consistent) plus the
  run-specific checks below.

    python -m loadtests.audit --database-url postgres://shop@127.0.0.1:6432/shop_load --ledger DIR --since EPOCH \
        [--mail-dir .run/loadtest/stack/mail]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

from mail.mailbox import journal, stored_messages

ROOT = Path(__file__).resolve().parent.parent
Invariants = dict[str, dict[str, Any]]
# The stock rule (orders/models.py STATUSES_HOLDING_STOCK): live orders hold their units; an order that can no
# longer be paid or shipped gave them back in the transaction that closed it.
LIVE = ["pending_payment", "paid", "fulfilled"]
CLOSED = ["payment_failed", "cancelled"]


def ledger_entries(ledger_dir: Path) -> Iterator[dict[str, Any]]:
    for path in sorted(ledger_dir.glob("ledger-*.jsonl")):
        with path.open() as handle:
            for line in handle:
                if line.strip():
                    yield json.loads(line)


def _ok(ok: bool, detail: str) -> dict[str, Any]:
    return {"ok": bool(ok), "detail": detail}


def _listed(items: list[Any], limit: int = 5) -> str:
    shown = ", ".join(str(item) for item in items[:limit])
    return shown + (f" (+{len(items) - limit} more)" if len(items) > limit else "")


def check_ledger_self_consistent(entries: list[dict[str, Any]]) -> Invariants:
    """Client side: one order id per (customer, key), and no curious probe ever answered 2xx."""
    orders_by_key: dict[tuple[str, str], set[int]] = defaultdict(set)
    for entry in entries:
        if entry["kind"] == "order_accepted":
            orders_by_key[(entry["username"], entry["key"])].add(entry["order_id"])
    doubled = [f"{user}/{key}: {sorted(ids)}" for (user, key), ids in orders_by_key.items() if len(ids) > 1]
    probes = [entry for entry in entries if entry["kind"] == "curious"]
    leaked = [f"{p['username']} {p['method']} {p['path']} -> {p['status']}" for p in probes if 200 <= p["status"] < 300]
    statuses = dict(Counter(str(p["status"]) for p in probes))
    return {
        "client_one_order_per_key": _ok(
            not doubled,
            f"{len(doubled)} keys answered with different orders: {_listed(doubled)}"
            if doubled
            else f"{len(orders_by_key)} keys accepted, each answered with one order id",
        ),
        "curious_never_saw_others_orders": _ok(
            not leaked,
            f"{len(leaked)} probes got 2xx: {_listed(leaked)}"
            if leaked
            else f"{len(probes)} probes of other customers' orders, answers {statuses}",
        ),
    }


def check_accepted_orders_exist(conn: psycopg.Connection[Any], entries: list[dict[str, Any]]) -> Invariants:
    """Every order a client saw accepted exists exactly once, for that customer, under that key."""
    accepted: dict[int, tuple[str, str]] = {}
    for entry in entries:
        if entry["kind"] == "order_accepted":
            accepted[int(entry["order_id"])] = (entry["username"], entry["key"])
    if not accepted:
        return {"accepted_orders_exist": _ok(False, "the clients saw no order accepted: the run placed nothing")}
    rows = conn.execute(
        """SELECT o.id, u.username, o.idempotency_key FROM orders_order o
           JOIN accounts_user u ON u.id = o.customer_id WHERE o.id = ANY(%s)""",
        [list(accepted)],
    ).fetchall()
    found = {int(order_id): (username, key) for order_id, username, key in rows}
    missing = sorted(set(accepted) - set(found))
    wrong = sorted(order_id for order_id, owner_key in found.items() if owner_key != accepted[order_id])
    # Exactly once: the same (customer, key) never appears on a second order row.
    keys = list({(user, key) for user, key in accepted.values()})
    dupes = conn.execute(
        """SELECT u.username, o.idempotency_key, count(*) FROM orders_order o
           JOIN accounts_user u ON u.id = o.customer_id
           JOIN unnest(%s::text[], %s::text[]) AS k(username, key) ON k.username = u.username
                AND k.key = o.idempotency_key
           GROUP BY u.username, o.idempotency_key HAVING count(*) > 1""",
        [[user for user, _ in keys], [key for _, key in keys]],
    ).fetchall()
    problems = []
    if missing:
        problems.append(f"{len(missing)} accepted orders missing: {_listed(missing)}")
    if wrong:
        problems.append(f"{len(wrong)} orders with another owner or key: {_listed(wrong)}")
    if dupes:
        problems.append(f"{len(dupes)} keys with several orders: {_listed(dupes)}")
    return {
        "accepted_orders_exist_once": _ok(
            not problems,
            "; ".join(problems) or f"all {len(accepted)} accepted orders exist once, with their owner and key",
        )
    }


def wait_for_settlement(conn: psycopg.Connection[Any], since: float, timeout_s: float) -> tuple[int, float]:
    """Give the Celery worker a bounded time to charge what the run ordered. Returns (still pending, waited)."""
    started = time.monotonic()
    while True:
        (pending,) = conn.execute(
            "SELECT count(*) FROM orders_order WHERE status = 'pending_payment' AND created_at >= to_timestamp(%s)",
            [since],
        ).fetchone() or (0,)
        waited = time.monotonic() - started
        if pending == 0 or waited >= timeout_s:
            return int(pending), waited
        time.sleep(1)


def check_run_orders(conn: psycopg.Connection[Any], since: float, pending: int, waited: float) -> Invariants:
    by_status = dict(
        conn.execute(
            "SELECT status, count(*) FROM orders_order WHERE created_at >= to_timestamp(%s) GROUP BY status", [since]
        ).fetchall()
    )
    stuck = conn.execute(
        """SELECT o.id, p.status, p.attempts, left(p.last_error, 60) FROM orders_order o
           LEFT JOIN payments_payment p ON p.order_id = o.id
           WHERE o.status = 'pending_payment' AND o.created_at >= to_timestamp(%s) ORDER BY o.id LIMIT 5""",
        [since],
    ).fetchall()
    # Refund owed: a cancelled order whose money was captured must have been given back by now.
    unrefunded = conn.execute(
        """SELECT o.id FROM orders_order o JOIN payments_payment p ON p.order_id = o.id
           WHERE o.created_at >= to_timestamp(%s) AND o.status = 'cancelled' AND p.status = 'captured'
           ORDER BY o.id LIMIT 20""",
        [since],
    ).fetchall()
    total = sum(by_status.values())
    return {
        "run_orders_settled": _ok(
            pending == 0 and total > 0,
            f"{total} orders placed during the run, by status {by_status}; worker drained in {waited:.0f}s"
            if pending == 0
            else f"{pending} of {total} orders still pending_payment after {waited:.0f}s, e.g. "
            f"(order, payment, attempts, error) {_listed(stuck)}",
        ),
        "cancelled_orders_refunded": _ok(
            not unrefunded,
            "every cancelled order that had been paid was refunded"
            if not unrefunded
            else f"{len(unrefunded)} cancelled orders still hold captured money: {_listed([r[0] for r in unrefunded])}",
        ),
    }


def check_no_oversell(conn: psycopg.Connection[Any], fixture: dict[str, Any]) -> Invariants:
    """Stock: received = on hand + held by live orders, never below 0, never sold beyond what was received; and
    every payment_failed or cancelled order gave its units back (it holds none)."""
    rush = fixture.get("rush_product_ids") or []
    rows = conn.execute(
        """SELECT p.id, p.sku, p.stock_received, p.stock_on_hand,
                  coalesce(sum(l.quantity) FILTER (WHERE o.status = ANY(%s)), 0) AS held,
                  count(DISTINCT o.id) FILTER (WHERE o.status = ANY(%s)) AS orders
           FROM shop_product p
           LEFT JOIN orders_orderline l ON l.product_id = p.id
           LEFT JOIN orders_order o ON o.id = l.order_id
           GROUP BY p.id
           HAVING p.id = ANY(%s) OR p.stock_on_hand < 0
               OR p.stock_received <> p.stock_on_hand + coalesce(sum(l.quantity) FILTER (WHERE o.status = ANY(%s)), 0)
           ORDER BY p.id""",
        [LIVE, LIVE, rush, LIVE],
    ).fetchall()
    problems = [
        f"{sku}: sold {held} of {received}"
        if held > received
        else f"{sku}: received {received} != on hand {on_hand} + held by live orders {held}"
        for _, sku, received, on_hand, held, _ in rows
        if received != on_hand + held or on_hand < 0
    ]
    holding = conn.execute(
        """SELECT id, status FROM orders_order WHERE status = ANY(%s) AND stock_released_at IS NULL
           ORDER BY id LIMIT 20""",
        [CLOSED],
    ).fetchall()
    problems += [f"order {order_id} is {status} but holds its stock" for order_id, status in holding]
    rush_detail = ", ".join(
        f"{sku} sold {held}/{received} ({orders} orders)" for pid, sku, received, _, held, orders in rows if pid in rush
    )
    return {
        "no_product_oversold": _ok(
            not problems,
            "received = on hand + held by live orders for every product; failed and cancelled orders hold none; "
            f"rush: {rush_detail or 'none'}"
            if not problems
            else f"stock broken: {_listed(problems)}",
        )
    }


def check_no_orphans(conn: psycopg.Connection[Any], since: float) -> Invariants:
    """Rows left behind by a request that died half-way: claims never finished, keys pointing at nothing."""
    stuck_claims = conn.execute(
        """SELECT count(*) FROM idempotency_idempotencykey
           WHERE status = 'in_flight' AND created_at >= to_timestamp(%s)""",
        [since],
    ).fetchone()
    dangling = conn.execute(
        """SELECT k.id FROM idempotency_idempotencykey k
           WHERE k.status = 'completed' AND k.response_status = 201 AND k.created_at >= to_timestamp(%s)
             AND NOT EXISTS (SELECT 1 FROM orders_order o
                             WHERE o.id = (k.response_body::jsonb ->> 'id')::bigint AND o.customer_id = k.user_id)
           LIMIT 20""",
        [since],
    ).fetchall()
    payments_without_orders = conn.execute(
        "SELECT count(*) FROM payments_payment p LEFT JOIN orders_order o ON o.id = p.order_id WHERE o.id IS NULL"
    ).fetchone()
    cart_items_without_cart = conn.execute(
        "SELECT count(*) FROM cart_cartitem i LEFT JOIN cart_cart c ON c.id = i.cart_id WHERE c.id IS NULL"
    ).fetchone()
    counts = {
        "idempotency claims left in flight": int((stuck_claims or (0,))[0]),
        "completed keys pointing at no order": len(dangling),
        "payments without an order": int((payments_without_orders or (0,))[0]),
        "cart items without a cart": int((cart_items_without_cart or (0,))[0]),
    }
    bad = {name: count for name, count in counts.items() if count}
    return {
        "no_orphan_rows": _ok(
            not bad,
            "no orphan rows (claims, keys, payments, cart items)" if not bad else f"orphans: {bad}",
        )
    }


def check_provider_charges(conn: psycopg.Connection[Any], since: float, provider_url: str | None) -> Invariants:
    """Charged exactly once: the provider's successful charges are exactly the shop's captured payments."""
    if not provider_url:
        return {}
    try:
        request = urllib.request.Request(f"{provider_url}/_stats")
        token = os.environ.get("PAYMENT_SIMULATOR_CONTROL_TOKEN")
        if token:
            request.add_header("Authorization", f"Bearer {token}")  # a simulator started with a control token
        with urllib.request.urlopen(request, timeout=5) as response:
            stats = json.load(response)
    except OSError as error:
        return {"charged_exactly_once": _ok(False, f"provider stats unavailable: {error}")}
    charged_keys = {key for key, times in stats.get("charges_per_key", {}).items() if times}
    twice = {key: times for key, times in stats.get("charges_per_key", {}).items() if times > 1}
    rows = conn.execute(
        """SELECT p.idempotency_key FROM payments_payment p JOIN orders_order o ON o.id = p.order_id
           WHERE p.status IN ('captured', 'refunded') AND o.created_at >= to_timestamp(%s)""",
        [since],
    ).fetchall()
    captured = {key for (key,) in rows}
    # The provider (started with this run's stack) only saw this run's charges; compare both directions.
    not_recorded = sorted(charged_keys - captured)
    never_charged = sorted(captured - charged_keys)
    problems = []
    if twice:
        problems.append(f"charged more than once: {_listed(sorted(twice))}")
    if not_recorded:
        problems.append(f"charged but not recorded as captured: {_listed(not_recorded)}")
    if never_charged:
        problems.append(f"recorded as captured but never charged: {_listed(never_charged)}")
    return {
        "charged_exactly_once": _ok(
            not problems, "; ".join(problems) or f"{len(captured)} payments captured, each charged exactly once"
        )
    }


def check_one_confirmation_per_accepted_order(
    conn: psycopg.Connection[Any], entries: list[dict[str, Any]], mail_dir: Path | None, timeout_s: float = 60
) -> Invariants:
    """Mail exactly once: every order a client saw accepted has one order_placed outbox row, sent, and (when the
    run's SMTP sink is known) the sink holds exactly one order_placed message with that X-Shop-Order.

    Placement writes the confirmation in its own transaction (orders/placement.py, do_order_create calls
    order_mail_enqueue), so an accepted order without its row is a failure, never a skip. Customers without an
    address are not counted: nobody was promised a message.
    """
    name = "one_confirmation_per_accepted_order"
    accepted = sorted({int(entry["order_id"]) for entry in entries if entry["kind"] == "order_accepted"})
    if not accepted:
        return {}

    def confirmations() -> list[tuple[Any, ...]]:
        return conn.execute(
            """SELECT o.id, o.number, count(m.id), count(m.id) FILTER (WHERE m.status = 'sent'),
                      count(m.id) FILTER (WHERE m.status IN ('pending', 'sending'))
               FROM orders_order o
               JOIN accounts_user u ON u.id = o.customer_id AND u.email <> ''
               LEFT JOIN mail_outboxmessage m ON m.order_id = o.id AND m.event = 'order_placed'
               WHERE o.id = ANY(%s) GROUP BY o.id, o.number ORDER BY o.id""",
            [accepted],
        ).fetchall()

    rows = confirmations()
    started = time.monotonic()
    while any(row[4] for row in rows) and time.monotonic() - started < timeout_s:
        time.sleep(1)  # the worker is still sending; the outbox, not the clock, decides when it is done
        rows = confirmations()
    missing = [order_id for order_id, _, count, _, _ in rows if count == 0]
    doubled = [order_id for order_id, _, count, _, _ in rows if count > 1]
    unsent = [order_id for order_id, _, count, sent, _ in rows if count == 1 and sent == 0]
    problems = []
    if missing:
        problems.append(f"{len(missing)} accepted orders without a confirmation row: {_listed(missing)}")
    if doubled:
        problems.append(f"{len(doubled)} orders with several confirmation rows: {_listed(doubled)}")
    if unsent:
        problems.append(f"{len(unsent)} confirmations not sent after {timeout_s:.0f}s: {_listed(unsent)}")
    received = ""
    if mail_dir is not None:
        numbers = {str(number) for _, number, _, _, _ in rows}
        per_order = Counter(
            message.order for message in stored_messages(mail_dir, limit=10**7) if message.event == "order_placed"
        )
        lacking = sorted(number for number in numbers if per_order.get(number, 0) == 0)
        twice = sorted(number for number in numbers if per_order.get(number, 0) > 1)
        resends = sum(1 for entry in journal(mail_dir) if entry["duplicate"])
        if lacking:
            problems.append(f"{len(lacking)} accepted orders with no message in the sink: {_listed(lacking)}")
        if twice:
            problems.append(f"{len(twice)} orders with several distinct messages in the sink: {_listed(twice)}")
        received = f"; the sink holds one order_placed message each ({resends} resends recognised by Message-ID)"
    return {
        name: _ok(
            not problems,
            "; ".join(problems) or f"all {len(rows)} accepted orders have exactly one sent confirmation{received}",
        )
    }


def check_database_invariants(database_url: str) -> Invariants:
    """The observability app's checker (`manage.py check_invariants`), run against the load database."""
    with tempfile.NamedTemporaryFile(suffix=".json") as output:
        env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
        env.pop("FAST_PASSWORD_HASHER", None)
        completed = subprocess.run(
            [sys.executable, "manage.py", "check_invariants", "--json", "--no-publish", "--output", output.name],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            document = json.loads(Path(output.name).read_text() or "{}")
        except ValueError:
            document = {}
    if not document.get("invariants"):
        return {"check_invariants": _ok(False, f"check_invariants did not run: {completed.stderr.strip()[-400:]}")}
    return {
        f"db_{name}": _ok(bool(result["ok"]), str(result.get("detail", "")))
        for name, result in document["invariants"].items()
    }


def audit(
    *,
    database_url: str | None,
    ledger_dir: Path,
    since: float,
    fixture: dict[str, Any],
    provider_url: str | None = None,
    mail_dir: Path | None = None,
    drain_timeout_s: float = 90,
) -> Invariants:
    entries = list(ledger_entries(ledger_dir))
    results: Invariants = check_ledger_self_consistent(entries)
    if database_url is None:
        results["database_checks"] = _ok(False, "not checked: no database URL for the target (set LOAD_DATABASE_URL)")
        return results
    # Transaction pooling: a statement psycopg prepared on one server connection is unknown on the next one,
    # so automatic preparation (after 5 runs of the same query, e.g. the drain poll) stays off, as in Django.
    with psycopg.connect(database_url, autocommit=True, prepare_threshold=None) as conn:
        pending, waited = wait_for_settlement(conn, since, drain_timeout_s)
        results.update(check_accepted_orders_exist(conn, entries))
        results.update(check_run_orders(conn, since, pending, waited))
        results.update(check_no_oversell(conn, fixture))
        results.update(check_no_orphans(conn, since))
        results.update(check_provider_charges(conn, since, provider_url))
        results.update(check_one_confirmation_per_accepted_order(conn, entries, mail_dir))
    results.update(check_database_invariants(database_url))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("LOAD_DATABASE_URL"))
    parser.add_argument("--ledger", required=True, type=Path)
    parser.add_argument("--since", type=float, required=True, help="run start, seconds since the epoch")
    parser.add_argument("--fixture", type=Path)
    parser.add_argument("--provider-url")
    parser.add_argument("--mail-dir", type=Path, help="the run's SMTP sink directory (mail/sink.py)")
    args = parser.parse_args()
    fixture = json.loads(args.fixture.read_text()) if args.fixture else {}
    results = audit(
        database_url=args.database_url,
        ledger_dir=args.ledger,
        since=args.since,
        fixture=fixture,
        provider_url=args.provider_url,
        mail_dir=args.mail_dir,
    )
    for name, result in results.items():
        print(f"{'ok  ' if result['ok'] else 'FAIL'} {name}: {result['detail']}")
    sys.exit(0 if all(result["ok"] for result in results.values()) else 1)


if __name__ == "__main__":
    main()
