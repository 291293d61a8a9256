"""/metrics in one process: who may read it, which labels requests get, and what the shop's events count.
(The multi-worker sum, scraped by a real Prometheus, is in test_live_stack.py.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sentry_sdk
from django.core.cache import cache
from django.test import Client
from prometheus_client import REGISTRY

from core import metrics
from observability.invariants import RESULTS_CACHE_KEY, InvariantResult, publish_results
from observability.sentry import scrub_event
from tests.factories import ProductFactory
from tests.observability.sentry_receiver import SentryReceiver


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def web() -> Client:
    return Client()


# --- Access ---------------------------------------------------------------------------------------------------


def test_metrics_are_open_in_development_and_tests(web: Client, db: None) -> None:
    response = web.get("/metrics")

    assert response.status_code == 200
    assert "shop_http_requests_total" in response.content.decode()


def test_a_configured_token_is_required(web: Client, db: None, settings: Any) -> None:
    settings.METRICS_TOKEN = "s3cret-scraper-token"

    assert web.get("/metrics").status_code == 401
    assert web.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert web.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scraper-token").status_code == 200


def test_an_allowed_address_passes_without_a_token(web: Client, db: None, settings: Any) -> None:
    settings.METRICS_ALLOWED_IPS = ["10.0.0.9"]

    assert web.get("/metrics", REMOTE_ADDR="10.0.0.9").status_code == 200
    assert web.get("/metrics", REMOTE_ADDR="10.0.0.10").status_code == 404


def test_production_without_protection_hides_metrics(web: Client, db: None, settings: Any) -> None:
    settings.PRODUCTION = True

    assert web.get("/metrics").status_code == 404


# --- Request metrics ------------------------------------------------------------------------------------------


def test_requests_are_labelled_by_route_pattern_not_raw_path(web: Client, db: None) -> None:
    products = ProductFactory.create_batch(2)
    route = "/api/v1/products/<int:product_id>/"
    before = sample("shop_http_requests_total", route=route, method="GET", status="200")
    before_unmatched = sample("shop_http_requests_total", route="<unmatched>", method="GET", status="404")

    for product in products:
        assert web.get(f"/api/v1/products/{product.pk}/").status_code == 200
    web.get("/no-such-page/12345/")

    # Two product ids, one series: cardinality does not grow with the catalog.
    assert sample("shop_http_requests_total", route=route, method="GET", status="200") == before + 2
    assert sample("shop_http_requests_total", route="<unmatched>", method="GET", status="404") == before_unmatched + 1
    assert not any(
        str(product.pk) in metric_sample.labels.get("route", "")
        for family in REGISTRY.collect()
        for metric_sample in family.samples
    )
    assert sample("shop_http_request_duration_seconds_count", route=route, method="GET") >= 2


def test_unknown_methods_share_one_label() -> None:
    assert metrics.bounded_method("PROPFIND") == "other"
    assert metrics.bounded_method("GET") == "GET"


# --- Invariant results: a gauge and a Sentry event -------------------------------------------------------------


@pytest.fixture
def sentry_receiver() -> Iterator[SentryReceiver]:
    receiver = SentryReceiver().start()
    yield receiver
    receiver.stop()


def test_a_violation_becomes_a_gauge_and_one_sentry_issue(
    web: Client, db: None, sentry_receiver: SentryReceiver
) -> None:
    broken = InvariantResult(
        name="stock_conservation",
        description="received = on hand + held by orders not cancelled",
        count=2,
        violations=["SKU-1: received 10 != on hand 7 + sold 2", "SKU-2: received 5 != on hand 4 + sold 0"],
    )
    healthy = InvariantResult(name="no_negative_stock", description="stock_on_hand >= 0")
    # The real SDK, sending to the local receiver, on a scope of its own (the rest of the suite has no DSN).
    client = sentry_sdk.Client(dsn=sentry_receiver.dsn, before_send=scrub_event, default_integrations=False)
    try:
        with sentry_sdk.new_scope() as scope:
            scope.set_client(client)
            publish_results([broken, healthy])
        client.flush(timeout=10)

        event = sentry_receiver.wait_for_event(lambda event: event.get("tags", {}).get("invariant") is not None)
        body = web.get("/metrics").content.decode()
    finally:
        client.close()
        cache.delete(RESULTS_CACHE_KEY)

    assert event["tags"]["invariant"] == "stock_conservation"
    assert event["fingerprint"] == ["invariant-violation", "stock_conservation"]
    assert event["level"] == "error"
    assert event["message"].startswith("Invariant violated: stock_conservation: 2 violation(s): SKU-1")
    assert len(sentry_receiver.events()) == 1  # the healthy invariant is not reported
    assert 'shop_invariant_violations{invariant="stock_conservation"} 2.0' in body
    assert 'shop_invariant_violations{invariant="no_negative_stock"} 0.0' in body
    assert "shop_invariant_last_run_timestamp_seconds" in body


# --- Dashboards and alerts refer to metrics that exist ----------------------------------------------------------


def _exported_series_names() -> set[str]:
    from prometheus_client.core import Metric

    from observability.collectors import ShopStateCollector

    families: list[Metric] = [*REGISTRY.collect(), *ShopStateCollector().collect()]
    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    return {family.name + suffix for family in families for suffix in suffixes.get(family.type, [""])}


def test_dashboard_and_alert_rules_use_only_metrics_the_app_exports(db: None) -> None:
    import json
    import re
    from pathlib import Path

    deploy = Path(__file__).resolve().parents[2] / "deploy" / "observability"
    alerts = (deploy / "alerts.yml").read_text()
    dashboard = json.loads((deploy / "grafana-dashboard.json").read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    recorded = set(re.findall(r"record: (\S+)", alerts))

    used = set(re.findall(r"(?<![:\w])(shop_[a-z_]+)", alerts + "\n".join(expressions)))

    assert used, "no shop metrics found in the dashboard and rules"
    assert used - _exported_series_names() - recorded == set()
    # Every recording rule the dashboard reads is defined.
    assert {name for name in re.findall(r"\b([a-z_]+:[a-z0-9_:]+)", "\n".join(expressions))} <= recorded
