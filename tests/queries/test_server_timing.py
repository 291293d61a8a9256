"""Server-Timing: every response says how many queries it cost and how long they took, when enabled.

`Server-Timing: db;dur=3.2;desc="4 queries"` (core.middleware.ServerTimingMiddleware): visible in the
browser's developer tools (Network, Timing) and with `curl -i`. On by default except in production.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from shop.models import Category
from tests.production import production_environment
from tests.queries.budget import new_orders, new_products

ROOT = Path(__file__).resolve().parents[2]
HEADER = re.compile(r'^db;dur=(\d+\.\d);desc="(\d+) queries"$')


def queries_in_header(response: Any) -> int:
    match = HEADER.match(response.headers["Server-Timing"])
    assert match, response.headers["Server-Timing"]
    return int(match.group(2))


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/search/?q=budget", "/api/v1/products/", "/api/v1/categories/"])
def test_the_header_counts_the_queries_the_request_ran(client: Client, path: str) -> None:
    new_products(3)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path)
    assert response.status_code == 200
    assert queries_in_header(response) == len(captured) > 0


@pytest.mark.django_db
def test_signed_in_pages_count_the_session_and_user_queries_too(alice: User, client: Client) -> None:
    new_orders(alice, 2)
    client.force_login(alice)
    with CaptureQueriesContext(connection) as captured:
        response = client.get("/orders/")
    assert queries_in_header(response) == len(captured) == 6


@pytest.mark.django_db
def test_errors_carry_the_header_as_well(client: Client) -> None:
    response = client.get("/api/v1/products/999999/")
    assert response.status_code == 404
    assert queries_in_header(response) == 1


def test_a_request_without_queries_says_zero(client: Client) -> None:
    assert queries_in_header(client.get("/healthz")) == 0


@pytest.mark.django_db
def test_no_header_when_disabled(client: Client, settings: Any) -> None:
    settings.SERVER_TIMING_ENABLED = False  # pytest-django's settings fixture: restored after the test
    response = client.get("/api/v1/products/")
    assert response.status_code == 200
    assert "Server-Timing" not in response.headers


def _setting_in(env: dict[str, str], name: str) -> str:
    clean = {key: value for key, value in os.environ.items() if key not in {"DJANGO_ENV", "DEBUG", name}}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import django; django.setup(); from django.conf import settings; print(settings.{name})",
        ],
        cwd=ROOT,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_on_by_default_in_development_and_off_by_default_in_production() -> None:
    assert _setting_in({"DJANGO_ENV": "development"}, "SERVER_TIMING_ENABLED") == "True"
    production = production_environment(THROTTLE_TRUSTED_PROXIES="0")
    assert _setting_in(production, "SERVER_TIMING_ENABLED") == "False"
    assert _setting_in({**production, "SERVER_TIMING_ENABLED": "true"}, "SERVER_TIMING_ENABLED") == "True"


# --- Under the running app: gunicorn, as `make run` serves it -------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def gunicorn(**overrides: str) -> Iterator[str]:
    """The app under gunicorn (config/gunicorn.conf.py) on a free port, against the test database (through
    PgBouncer), in development mode as `make run` starts it. Yields the base URL."""
    database = settings.DATABASES["default"]
    port = _free_port()
    env = {key: value for key, value in os.environ.items() if key not in {"SERVER_TIMING_ENABLED", "DEBUG"}}
    env.update(
        DJANGO_ENV="development",
        DATABASE_URL=f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        GUNICORN_WORKERS="1",
        GUNICORN_THREADS="2",
        GUNICORN_LOG_LEVEL="warning",
        # The query shape is measured, not the catalog cache (it would answer a repeated read with no query).
        CATALOG_CACHE_S="0",
        **overrides,
    )
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application", "-c", "config/gunicorn.conf.py"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, "gunicorn exited"
            assert time.monotonic() < deadline, "gunicorn did not answer /healthz"
            time.sleep(0.2)
        yield base_url
    finally:
        process.terminate()
        process.wait(timeout=30)


def _insert_products(*, category_id: int, count: int) -> None:
    """Products in one statement (as seed_demo --products does), committed: the server must see them."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO shop_product (category_id, sku, name, slug, description, price, currency, is_active,
                                      stock_on_hand, stock_received, version, created_at, updated_at)
            SELECT %s, 'BULK-' || n, 'Bulk product ' || n, 'bulk-product-' || n, '', 9.99, 'EUR', true,
                   10, 10, 1, now(), now()
            FROM generate_series((SELECT count(*) FROM shop_product) + 1, (SELECT count(*) FROM shop_product) + %s) AS n
            """,
            [category_id, count],
        )


@pytest.mark.django_db(transaction=True)
def test_curl_shows_the_query_count_and_it_does_not_move_with_10000_more_products() -> None:
    bulk = Category.objects.create(name="Bulk", slug="bulk")
    _insert_products(category_id=bulk.pk, count=30)
    paths = ["/", "/c/bulk/", "/search/?q=bulk", "/p/bulk-product-1/", "/api/v1/products/", "/api/v1/products/?q=bulk"]
    with gunicorn() as server:
        for path in paths:  # a fresh worker's first request also opens its database connection
            httpx.get(server + path)
        before = {path: queries_in_header(httpx.get(server + path)) for path in paths}
        _insert_products(category_id=bulk.pk, count=10_000)
        after = {path: queries_in_header(httpx.get(server + path)) for path in paths}
    assert after == before
    assert all(count >= 1 for count in after.values()), after


@pytest.mark.django_db(transaction=True)
def test_the_running_app_sends_no_header_when_disabled() -> None:
    with gunicorn(SERVER_TIMING_ENABLED="false") as server:
        response = httpx.get(server + "/api/v1/products/")
    assert response.status_code == 200
    assert "Server-Timing" not in response.headers
