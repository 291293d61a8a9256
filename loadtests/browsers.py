"""Browsers: anonymous visitors reading the catalog, in HTML and through the API, with the odd bad URL."""

from __future__ import annotations

import random
from urllib.parse import quote

from locust import FastHttpUser, between, task

from loadtests.common import CATALOG, call

SEARCH_TERMS = ["tea", "coffee", "green", "kettle", "set", "TEA-0001", "zzz-nothing", "earl", "ä", "' OR 1=1 --"]


class Browser(FastHttpUser):
    """Reads only: home, categories, search, product pages, and paginated lists (API and HTML)."""

    weight = 6
    wait_time = between(2, 8)
    network_timeout = 30.0
    connection_timeout = 10.0

    @task(4)
    def product_list_api(self) -> None:
        """Walk one to three pages of the cursor-paginated product list, as an infinite scroll would."""
        path = f"/api/v1/products/?page_size={random.choice([10, 20, 50])}"
        if CATALOG.category_slugs and random.random() < 0.5:
            path += f"&category={random.choice(CATALOG.category_slugs)}"
        for _ in range(random.randint(1, 3)):
            result = call(self, "GET", path, name="GET /api/v1/products/", expect={"200"})
            next_url = result.data.get("next") if isinstance(result.data, dict) else None
            if not next_url:
                return
            path = next_url.split("://", 1)[-1].split("/", 1)[-1]
            path = "/" + path

    @task(2)
    def search_api(self) -> None:
        call(
            self,
            "GET",
            f"/api/v1/products/?q={quote(random.choice(SEARCH_TERMS))}",
            name="GET /api/v1/products/?q=",
            expect={"200"},
        )

    @task(3)
    def product_detail_api(self) -> None:
        if not CATALOG.product_ids:
            return
        product_id = random.choice(CATALOG.product_ids)
        call(self, "GET", f"/api/v1/products/{product_id}/", name="GET /api/v1/products/[id]/", expect={"200"})

    @task(1)
    def categories_api(self) -> None:
        call(self, "GET", "/api/v1/categories/", name="GET /api/v1/categories/", expect={"200"})

    @task(1)
    def hostile_reads(self) -> None:
        """Strangers who do not read the docs: huge pages, junk cursors, missing products. All 4xx, never 500."""
        probe: list[tuple[str, str, set[str]]] = [
            ("/api/v1/products/?page_size=100000", "GET /api/v1/products/?page_size=huge", {"400"}),
            ("/api/v1/products/?cursor=not-a-cursor", "GET /api/v1/products/?cursor=junk", {"404", "400"}),
            ("/api/v1/products/99999999/", "GET /api/v1/products/[missing]/", {"404"}),
            ("/api/v1/orders/", "GET /api/v1/orders/ (anonymous)", {"401"}),
        ]
        path, name, expect = random.choice(probe)
        call(self, "GET", path, name=name, expect=expect)

    # --- HTML pages (enabled once the web pages exist; see locustfile.discover_web) ---------------------------

    @task(4)
    def home_html(self) -> None:
        if CATALOG.web_pages:
            call(self, "GET", "/", name="GET / (html)", expect={"200"})

    @task(2)
    def category_html(self) -> None:
        if CATALOG.web_pages and CATALOG.category_slugs:
            slug = random.choice(CATALOG.category_slugs)
            page = random.choice(["", "?page=2", "?page=abc", "?page=99999"])
            call(self, "GET", f"/c/{slug}/{page}", name="GET /c/[slug]/ (html)", expect={"200"})

    @task(3)
    def product_html(self) -> None:
        if CATALOG.web_pages and CATALOG.product_slugs:
            slug = random.choice(list(CATALOG.product_slugs.values()))
            call(self, "GET", f"/p/{slug}/", name="GET /p/[slug]/ (html)", expect={"200"})

    @task(1)
    def search_html(self) -> None:
        if CATALOG.web_pages:
            term = quote(random.choice(SEARCH_TERMS))
            call(self, "GET", f"/search/?q={term}", name="GET /search/ (html)", expect={"200"})
