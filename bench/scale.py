"""Scale benchmark: does any page or endpoint cost more when the shop holds 100x more data?

    make bench-scale                      # or: .venv/bin/python bench/scale.py [--rounds 6] [--keep]

Builds two databases next to each other, `<name>_small` (100 products, 100 orders) and `<name>_large`
(10,000 products, 100,000 orders with their lines, 1,000 customers), each migrated directly on PostgreSQL and
seeded by `seed_demo` (set-based SQL: the large one takes seconds). In both, alice is the heavy customer
(30% of all orders) and has three items in her cart. Then every main endpoint is requested through the
Django test client, over PgBouncer like the running app, alternating small and large in rounds so that load
from anything else on the machine hits both sides alike. For each endpoint it prints the query count (read
from the response's own Server-Timing header) and the median latency at both volumes, and the ratio.

Acceptance (issue 5): the same query count at both volumes for every endpoint, and a median latency at the
large volume within 1.5x of the small one. The exit status is 1 when an endpoint misses either.
Not part of the test suite: it needs a minute and a quiet machine, and measures time, which tests never assert.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# Production-like request handling: no DEBUG (no query log in memory), Server-Timing on (it is the meter).
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ["DJANGO_ENV"] = "development"
os.environ["DEBUG"] = "false"
os.environ["SERVER_TIMING_ENABLED"] = "true"
# The query shape is measured, not the catalog cache: one process serves both databases here, and a cached
# answer from the small one would be served for the large one (shop/catalog_cache.py keys by URL).
os.environ["CATALOG_CACHE_S"] = "0"
os.environ.setdefault("FAST_PASSWORD_HASHER", "true")
os.environ.setdefault("LOG_LEVEL", "WARNING")

POOLED_URL = os.environ.get("DATABASE_URL", "postgres://shop@127.0.0.1:6432/shop")
DIRECT_URL = os.environ.get("DIRECT_DATABASE_URL", "postgres://shop@127.0.0.1:5432/shop")

SMALL = {"products": 100, "customers": 10, "orders": 100}
LARGE = {"products": 10_000, "customers": 1_000, "orders": 100_000}
MAX_LATENCY_RATIO = 1.5
SERVER_TIMING = re.compile(r'db;dur=([0-9.]+);desc="(\d+) queries"')


def _with_database(url: str, name: str) -> str:
    return url.rsplit("/", 1)[0] + "/" + name


def create_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_with_database(DIRECT_URL, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(_with_database(DIRECT_URL, "postgres"), autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(*args: str, database_url: str) -> float:
    """Run a management command in a child process; return how long it took."""
    started = time.perf_counter()
    subprocess.run(  # noqa: S603 - our own interpreter and manage.py
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": database_url},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def build(name: str, volume: dict[str, int]) -> float:
    """Create, migrate (directly on PostgreSQL: DDL does not go through the pooler) and seed one database."""
    create_database(name)
    manage("migrate", "--noinput", database_url=_with_database(DIRECT_URL, name))
    return manage(
        "seed_demo",
        f"--products={volume['products']}",
        f"--customers={volume['customers']}",
        f"--orders={volume['orders']}",
        "--heavy-customer=alice",
        database_url=_with_database(POOLED_URL, name),
    )


@dataclass
class Endpoint:
    name: str
    path: Callable[[dict[str, Any]], str]
    actor: str  # "anonymous", "alice" (customer), "admin" (staff with every grant)
    api: bool = False


ENDPOINTS = [
    Endpoint("API categories", lambda c: "/api/v1/categories/", "anonymous", api=True),
    Endpoint("API products", lambda c: "/api/v1/products/", "anonymous", api=True),
    Endpoint("API products ?category=", lambda c: "/api/v1/products/?category=tea", "anonymous", api=True),
    Endpoint("API products ?q=word", lambda c: "/api/v1/products/?q=tea", "anonymous", api=True),
    Endpoint("API products ?q=SKU", lambda c: f"/api/v1/products/?q={c['sku']}", "anonymous", api=True),
    Endpoint("API product detail", lambda c: f"/api/v1/products/{c['product_id']}/", "anonymous", api=True),
    Endpoint("API orders (alice)", lambda c: "/api/v1/orders/", "alice", api=True),
    Endpoint("API orders ?status=", lambda c: "/api/v1/orders/?status=paid", "alice", api=True),
    Endpoint("API order detail", lambda c: f"/api/v1/orders/{c['order_id']}/", "alice", api=True),
    Endpoint("API staff orders", lambda c: "/api/v1/staff/orders/", "admin", api=True),
    Endpoint("API staff products", lambda c: "/api/v1/staff/products/", "admin", api=True),
    Endpoint("page home", lambda c: "/", "anonymous"),
    Endpoint("page category", lambda c: "/c/tea/", "anonymous"),
    Endpoint("page search", lambda c: "/search/?q=tea", "anonymous"),
    Endpoint("page product", lambda c: f"/p/{c['slug']}/", "alice"),
    Endpoint("page cart", lambda c: "/cart/", "alice"),
    Endpoint("page checkout", lambda c: "/cart/checkout/", "alice"),
    Endpoint("page order history", lambda c: "/orders/", "alice"),
    Endpoint("page order detail", lambda c: f"/orders/{c['order_id']}/", "alice"),
    Endpoint("page staff dashboard", lambda c: "/staff/", "admin"),
    Endpoint("page staff orders", lambda c: "/staff/orders/", "admin"),
    Endpoint("page staff order", lambda c: f"/staff/orders/{c['order_id']}/", "admin"),
    Endpoint("page staff products", lambda c: "/staff/products/", "admin"),
    Endpoint("admin orders", lambda c: "/admin/orders/order/", "admin"),
    Endpoint("admin orders ?status=", lambda c: "/admin/orders/order/?status__exact=paid", "admin"),
    Endpoint("admin order", lambda c: f"/admin/orders/order/{c['order_id']}/change/", "admin"),
    Endpoint("admin products", lambda c: "/admin/shop/product/", "admin"),
    # A word that fills the admin's 50-row page at both sizes (80 of the small catalog's 100 products, ~1,000 of
    # the large one's): with "tea" (35 of 100) the small page showed fewer rows, and the ratio measured the page.
    Endpoint("admin products ?q=", lambda c: "/admin/shop/product/?q=smoky", "admin"),
]


@dataclass
class Side:
    """One database, with the clients and ids its endpoints need."""

    label: str
    database: str
    context: dict[str, Any]
    clients: dict[str, Any]
    rows: str


def use_database(name: str) -> None:
    from django.db import connections

    connection = connections["default"]
    connection.close()
    connection.settings_dict["NAME"] = name


def prepare(label: str, database: str) -> Side:
    """Pick ids to request and sign the actors in (this writes sessions and alice's cart, on this side only)."""
    from django.test import Client
    from rest_framework.test import APIClient
    from rest_framework_simplejwt.tokens import RefreshToken

    from accounts.models import User
    from cart.models import Cart, CartItem
    from orders.models import Order
    from shop.models import Product

    use_database(database)
    alice = User.objects.get(username="alice")
    admin = User.objects.get(username="admin")
    cart, _ = Cart.objects.get_or_create(user=alice)
    for in_cart in Product.objects.filter(is_active=True, stock_on_hand__gt=5).order_by("id")[:3]:
        CartItem.objects.get_or_create(cart=cart, product=in_cart, defaults={"quantity": 1})
    product = Product.objects.filter(is_active=True).order_by("-id").first()
    order = Order.objects.filter(customer=alice).order_by("-id").first()
    assert product is not None and order is not None
    context = {"product_id": product.pk, "slug": product.slug, "sku": product.sku, "order_id": order.pk}

    clients: dict[str, Any] = {"anonymous": Client(), "anonymous-api": APIClient()}
    for username, user in {"alice": alice, "admin": admin}.items():
        page_client = Client()
        page_client.force_login(user)
        api_client = APIClient()
        api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {RefreshToken.for_user(user).access_token}")
        clients[username] = page_client
        clients[f"{username}-api"] = api_client
    rows = f"{Product.objects.count():,} products, {Order.objects.count():,} orders"
    return Side(label=label, database=database, context=context, clients=clients, rows=rows)


@dataclass
class Sample:
    queries: set[int]
    latencies_ms: list[float]
    db_ms: list[float]


def hit(side: Side, endpoint: Endpoint, sample: Sample, *, repeat: int, timed: bool) -> None:
    client = side.clients[f"{endpoint.actor}-api" if endpoint.api else endpoint.actor]
    path = endpoint.path(side.context)
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{endpoint.name} on {side.label}: GET {path} answered {response.status_code}")
        timing = SERVER_TIMING.search(response.get("Server-Timing", ""))
        if timing is None:
            raise SystemExit(f"{endpoint.name}: no Server-Timing header (is SERVER_TIMING_ENABLED on?)")
        if timed:
            sample.queries.add(int(timing.group(2)))
            sample.latencies_ms.append(elapsed_ms)
            sample.db_ms.append(float(timing.group(1)))


def measure(
    small: Side, large: Side, endpoints: list[Endpoint], *, rounds: int, per_round: int
) -> list[tuple[Endpoint, Sample, Sample]]:
    results = []
    for endpoint in endpoints:
        samples = {small.label: Sample(set(), [], []), large.label: Sample(set(), [], [])}
        for _ in range(rounds):
            # Alternate sides in short rounds: background load on a shared machine hits both alike.
            for side in (small, large):
                use_database(side.database)
                hit(side, endpoint, samples[side.label], repeat=2, timed=False)  # connection + caches warm
                hit(side, endpoint, samples[side.label], repeat=per_round, timed=True)
        results.append((endpoint, samples[small.label], samples[large.label]))
    return results


def report(small: Side, large: Side, results: list[tuple[Endpoint, Sample, Sample]]) -> bool:
    print(f"\nsmall: {small.rows}    large: {large.rows}\n")
    print(
        "| endpoint | queries small | queries large | median ms small | median ms large | ratio "
        "| db ms small | db ms large | ok |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    all_ok = True
    for endpoint, at_small, at_large in results:
        small_ms = statistics.median(at_small.latencies_ms)
        large_ms = statistics.median(at_large.latencies_ms)
        ratio = large_ms / small_ms
        same_queries = len(at_small.queries) == 1 and at_small.queries == at_large.queries
        ok = same_queries and ratio <= MAX_LATENCY_RATIO
        all_ok = all_ok and ok
        queries_small = "/".join(str(count) for count in sorted(at_small.queries))
        queries_large = "/".join(str(count) for count in sorted(at_large.queries))
        db_small, db_large = statistics.median(at_small.db_ms), statistics.median(at_large.db_ms)
        print(
            f"| {endpoint.name} | {queries_small} | {queries_large} | {small_ms:.1f} | {large_ms:.1f} "
            f"| {ratio:.2f}x | {db_small:.1f} | {db_large:.1f} | {'yes' if ok else 'NO'} |"
        )
    print(
        f"\nAcceptance: same query count at both volumes and large/small median <= {MAX_LATENCY_RATIO}x: "
        f"{'PASS' if all_ok else 'FAIL'}"
    )
    return all_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database", default=os.environ.get("BENCH_DATABASE", "shop_bench"))
    parser.add_argument("--rounds", type=int, default=6, help="alternations small/large per endpoint")
    parser.add_argument("--per-round", type=int, default=5, help="timed requests per side per round")
    parser.add_argument("--reuse", action="store_true", help="measure the databases of a previous --keep run")
    parser.add_argument("--only", default="", help="measure only endpoints whose name contains this")
    parser.add_argument("--keep", action="store_true", help="leave both databases in place afterwards")
    args = parser.parse_args()

    small_db, large_db = f"{args.database}_small", f"{args.database}_large"
    os.environ["DATABASE_URL"] = _with_database(POOLED_URL, small_db)
    if not args.reuse:
        seconds = build(small_db, SMALL)
        print(f"seeded {small_db}: {SMALL} in {seconds:.1f} s")
        seconds = build(large_db, LARGE)
        print(f"seeded {large_db}: {LARGE} in {seconds:.1f} s")

    import django

    django.setup()
    small = prepare("small", small_db)
    large = prepare("large", large_db)
    started = time.perf_counter()
    endpoints = [endpoint for endpoint in ENDPOINTS if args.only.lower() in endpoint.name.lower()]
    results = measure(small, large, endpoints, rounds=args.rounds, per_round=args.per_round)
    print(f"measured {len(endpoints)} endpoints in {time.perf_counter() - started:.0f} s")
    passed = report(small, large, results)

    from django.db import connections

    connections.close_all()
    if not args.keep:
        drop_database(small_db)
        drop_database(large_db)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
