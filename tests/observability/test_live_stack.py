"""The shop running for real (gunicorn with several workers, a Celery worker, Prometheus, a Sentry receiver):
errors arrive in Sentry with ids and without secrets, logs are JSON lines that one request id ties together,
and the metrics add up across worker processes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from loadtests.machine import CAPTURE_TASK, task_counters
from tests.capacity.infra import free_port, wait_for
from tests.conftest import order_payload
from tests.observability.conftest import METRICS_TOKEN, ROOT, LiveStack
from tests.observability.sentry_receiver import exception_types

# What a customer sends that must never reach Sentry.
PASSWORD = "Pa55word-must-not-leak"
CARD_NUMBER = "4111111111111111"
ADDRESS_LINE = "221B Secret Street"
SESSION_COOKIE = "sessioncookie-must-not-leak"
QUERY_TOKEN = "querytoken-must-not-leak"


def _boom(stack: LiveStack, request_id: str) -> httpx.Response:
    with stack.client() as client:
        return client.post(
            f"/boom/?token={QUERY_TOKEN}",
            json={
                "password": PASSWORD,
                "card_number": CARD_NUMBER,
                "shipping_address": {"line1": ADDRESS_LINE, "city": "London"},
            },
            headers={"Authorization": f"Bearer {stack.alice_token}", "X-Request-ID": request_id},
            cookies={"sessionid": SESSION_COOKIE, "csrftoken": SESSION_COOKIE},
        )


@pytest.fixture(scope="module")
def boom(live_stack: LiveStack) -> dict[str, Any]:
    """One failing request (which also enqueues a task that fails until its retries run out)."""
    response = _boom(live_stack, "req-boom-0001")
    return {"response": response, "request_id": "req-boom-0001"}


# --- Sentry -------------------------------------------------------------------------------------------------


def test_a_failing_view_reaches_sentry_with_request_id_and_user_id(live_stack: LiveStack, boom: dict[str, Any]) -> None:
    assert boom["response"].status_code == 500
    assert boom["response"].headers["X-Request-ID"] == boom["request_id"]

    event = live_stack.receiver.wait_for_event(lambda event: "RuntimeError" in exception_types(event))

    assert event["tags"]["request_id"] == boom["request_id"]
    assert event["user"] == {"id": str(live_stack.alice_id)}
    assert event["environment"] == "test"
    assert event["transaction"] == "/boom/"
    # The stack is there: the frame that raised is the view.
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "post"


def test_a_task_whose_retries_run_out_reaches_sentry_with_the_requests_ids(
    live_stack: LiveStack, boom: dict[str, Any]
) -> None:
    event = live_stack.receiver.wait_for_event(lambda event: "FlakyDependency" in exception_types(event))

    assert event["tags"]["request_id"] == boom["request_id"]
    assert event["user"] == {"id": str(live_stack.alice_id)}
    assert event["extra"]["celery-job"]["task_name"] == "tests.observability.live.tasks.explode_task"
    # Reported once, when the last retry failed: the first failure was retried, not reported.
    task_events = [e for e in live_stack.receiver.events() if "FlakyDependency" in exception_types(e)]
    assert len(task_events) == 1
    started = [
        line
        for line in live_stack.worker_lines()
        if line["event"] == "task started" and line.get("task", "").endswith("explode_task")
    ]
    assert [line["retries"] for line in started] == [0, 1]


def test_no_secret_reaches_sentry(live_stack: LiveStack, boom: dict[str, Any]) -> None:
    receiver = live_stack.receiver
    receiver.wait_for_event(lambda event: "RuntimeError" in exception_types(event))
    receiver.wait_for_event(lambda event: "FlakyDependency" in exception_types(event))
    # The request's transaction (performance trace, with its SQL spans) is scanned as well.
    wait_for(lambda: receiver.events("transaction"), timeout_s=30, what="a transaction")

    payload = receiver.raw_text()
    for secret in (PASSWORD, CARD_NUMBER, ADDRESS_LINE, SESSION_COOKIE, QUERY_TOKEN, live_stack.alice_token):
        assert secret not in payload, f"{secret!r} leaked to Sentry"
    # The card number was in the exception message: masked, with the rest of the message kept.
    view_event = receiver.wait_for_event(lambda event: "RuntimeError" in exception_types(event))
    assert view_event["exception"]["values"][-1]["value"] == "payment step failed for card [Filtered]"


# --- Logs ---------------------------------------------------------------------------------------------------

ACCESS_FIELDS = {
    "timestamp",
    "level",
    "event",
    "request_id",
    "user_id",
    "method",
    "route",
    "status",
    "duration_ms",
    "db_queries",
}


def test_every_log_line_is_json_and_each_request_has_one_access_line(
    live_stack: LiveStack, boom: dict[str, Any]
) -> None:
    with live_stack.client() as client:
        client.get(f"/api/v1/products/{live_stack.product_id}/", headers={"X-Request-ID": "req-product-0001"})

    def access_lines(request_id: str) -> list[dict[str, Any]]:
        return [
            line
            for line in live_stack.web_lines()  # read_json_lines fails on any line that is not JSON
            if line.get("logger") == "observability.access" and line["request_id"] == request_id
        ]

    [product_line] = wait_for(lambda: access_lines("req-product-0001"), timeout_s=10, what="the access line")
    assert product_line.keys() >= ACCESS_FIELDS
    assert product_line["route"] == "/api/v1/products/<int:product_id>/"
    assert product_line["status"] == 200
    assert product_line["method"] == "GET"
    assert product_line["db_queries"] >= 1
    assert product_line["user_id"] is None

    [boom_line] = access_lines(boom["request_id"])
    assert boom_line["status"] == 500
    assert boom_line["level"] == "error"
    assert boom_line["user_id"] == str(live_stack.alice_id)
    # The traceback line Django writes for the 500 carries the same id.
    assert any(
        line.get("logger") == "django.request" and line["request_id"] == boom["request_id"]
        for line in live_stack.web_lines()
    )
    assert all(json.dumps(line) for line in live_stack.worker_lines())


def place_order(live_stack: LiveStack, *, request_id: str, key: str) -> None:
    """One order through the API, carrying `request_id`: its capture task's log lines carry the same id."""
    with live_stack.client() as client:
        response = client.post(
            "/api/v1/orders/",
            json=order_payload((live_stack.product_id, 1)),
            headers={
                "Authorization": f"Bearer {live_stack.alice_token}",
                "Idempotency-Key": key,
                "X-Request-ID": request_id,
            },
        )
    assert response.status_code == 201, response.text


def capture_task_lines(live_stack: LiveStack, *, request_id: str, event: str) -> list[dict[str, Any]]:
    # The order's confirmation mail task carries the same id; these tests follow the payment task.
    return [
        line
        for line in live_stack.worker_lines()
        if line.get("request_id") == request_id and line["event"] == event and line.get("task") == CAPTURE_TASK
    ]


def first_capture_task_line(live_stack: LiveStack, *, request_id: str, event: str) -> dict[str, Any]:
    lines = wait_for(
        lambda: capture_task_lines(live_stack, request_id=request_id, event=event),
        timeout_s=30,
        what=f"the payment task's {event!r} line",
    )
    return lines[0]


def test_one_request_id_links_the_order_request_to_its_payment_task(live_stack: LiveStack) -> None:
    request_id = "req-order-0001"
    place_order(live_stack, request_id=request_id, key="obs-order-1")
    started = first_capture_task_line(live_stack, request_id=request_id, event="task started")
    assert started["user_id"] == str(live_stack.alice_id)
    [access] = [
        line
        for line in live_stack.web_lines()
        if line.get("logger") == "observability.access" and line["request_id"] == request_id
    ]
    assert access["route"] == "/api/v1/orders/"
    assert access["status"] == 201
    assert access["pid"] != started["pid"]  # two processes, one story


# --- Metrics, scraped by a real Prometheus ------------------------------------------------------------------


@pytest.fixture(scope="module")
def prometheus(live_stack: LiveStack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Prometheus server on a private port and storage directory, scraping the live stack every second
    with the bearer token, and evaluating the shop's real alert rules."""
    binary = shutil.which("prometheus") or "/usr/bin/prometheus"
    if not Path(binary).exists():
        pytest.fail("prometheus is not installed: run `deploy/scripts/stack.sh packages prometheus`")
    workdir = tmp_path_factory.mktemp("prometheus")
    (workdir / "token").write_text(METRICS_TOKEN)
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ROOT / "deploy/observability/alerts.yml")],
        "scrape_configs": [
            {
                "job_name": "shop",
                "metrics_path": "/metrics",
                "authorization": {"type": "Bearer", "credentials_file": str(workdir / "token")},
                "static_configs": [{"targets": [live_stack.base_url.removeprefix("http://")]}],
            }
        ],
    }
    (workdir / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{url}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout_s=30, what="Prometheus to start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


def promql(prometheus_url: str, query: str) -> list[dict[str, Any]]:
    response = httpx.get(f"{prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def promql_value(prometheus_url: str, query: str) -> float | None:
    result = promql(prometheus_url, query)
    return float(result[0]["value"][1]) if result else None


def test_metrics_need_the_token_when_one_is_configured(live_stack: LiveStack) -> None:
    with live_stack.client() as client:
        anonymous = client.get("/metrics")
        wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token"})
        scraper = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert anonymous.status_code == 401
    assert wrong.status_code == 401
    assert "shop_http_requests_total" not in anonymous.text
    assert scraper.status_code == 200
    assert scraper.headers["Content-Type"].startswith("text/plain")


def test_prometheus_sees_the_sum_over_all_gunicorn_workers(live_stack: LiveStack, prometheus: str) -> None:
    requests_sent = 60
    route = "/api/v1/categories/"

    def fetch(index: int) -> int:
        # A fresh connection per request, so the kernel hands them to different worker processes.
        response = httpx.get(f"{live_stack.base_url}{route}", headers={"X-Request-ID": f"req-count-{index:03d}"})
        return response.status_code

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(fetch, range(requests_sent)))
    assert statuses == [200] * requests_sent

    # Several processes answered (each access line names its pid)...
    pids = {
        line["pid"]
        for line in live_stack.web_lines()
        if line.get("logger") == "observability.access" and line["request_id"].startswith("req-count-")
    }
    assert len(pids) >= 2, "all requests went to one worker; the sum would prove nothing"
    # ... and Prometheus, scraping whichever worker answers, sees every request exactly once.
    query = f'sum(shop_http_requests_total{{route="{route}",method="GET",status="200"}})'
    wait_for(lambda: promql_value(prometheus, query) == requests_sent, timeout_s=30, what=f"{query} == {requests_sent}")
    count_query = f'sum(shop_http_request_duration_seconds_count{{route="{route}"}})'
    assert promql_value(prometheus, count_query) == requests_sent
    assert promql_value(prometheus, 'up{job="shop"}') == 1


def test_shop_metrics_and_scrape_time_gauges_reach_prometheus(live_stack: LiveStack, prometheus: str) -> None:
    headers = {"Authorization": f"Bearer {live_stack.alice_token}"}
    with live_stack.client() as client:
        placed = [
            client.post(
                "/api/v1/orders/",
                json=order_payload((live_stack.product_id, 1)),
                headers={**headers, "Idempotency-Key": f"obs-metrics-{index}"},
            )
            for index in range(3)
        ]
        replay = client.post(
            "/api/v1/orders/",
            json=order_payload((live_stack.product_id, 1)),
            headers={**headers, "Idempotency-Key": "obs-metrics-0"},
        )
        reused = client.post(
            "/api/v1/orders/",
            json=order_payload((live_stack.product_id, 2)),
            headers={**headers, "Idempotency-Key": "obs-metrics-0"},
        )
        sold_out = client.post(
            "/api/v1/orders/",
            json=order_payload((live_stack.sold_out_product_id, 1)),
            headers={**headers, "Idempotency-Key": "obs-metrics-stock"},
        )
    assert [response.status_code for response in placed] == [201, 201, 201]
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert reused.status_code == 422
    assert sold_out.status_code == 409

    def value(query: str) -> float | None:
        return promql_value(prometheus, query)

    # Orders placed in this module: one in the log test, three here.
    wait_for(lambda: value("sum(shop_orders_placed_total)") == 4, timeout_s=30, what="orders placed == 4")
    # One scrape may fall between the third order and the requests after it (1 s apart on a busy machine):
    # each counter is awaited until a scrape has seen it, never read once from a scrape that came too early.
    wait_for(lambda: value("sum(shop_idempotent_replays_total)") == 1, timeout_s=30, what="replays == 1")
    wait_for(
        lambda: value('sum(shop_idempotency_key_conflicts_total{reason="reused"})') == 1,
        timeout_s=30,
        what="reused key conflicts == 1",
    )
    wait_for(
        lambda: value('sum(shop_stock_conflicts_total{reason="insufficient_stock"})') == 1,
        timeout_s=30,
        what="insufficient stock conflicts == 1",
    )
    # Payment tasks ran in the Celery worker (the provider is down here): the worker's counters are summed too.
    wait_for(lambda: (value("sum(shop_payment_attempts_total)") or 0) >= 1, timeout_s=30, what="payment attempts")
    # Scrape-time gauges: dependencies, pending orders, queue, pool, breaker.
    assert value("shop_ready") == 1
    assert value("shop_pending_payment_orders") == 4
    assert (value("shop_oldest_pending_payment_age_seconds") or 0) > 0
    assert value('shop_celery_queue_length{queue="celery"}') is not None
    assert value("shop_pgbouncer_pool_size") is not None
    assert value("shop_circuit_breaker_state") in {0, 1, 2}
    assert value("min(shop_metrics_source_up)") == 1
    # The real alert rules load and evaluate against these series without errors.
    rules = httpx.get(f"{prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {group["name"] for group in rules} == {"shop-recording", "shop-alerts"}
    assert all(rule["health"] in {"ok", "unknown"} for group in rules for rule in group["rules"])


def test_every_dashboard_query_is_valid_promql(prometheus: str) -> None:
    dashboard = json.loads((ROOT / "deploy/observability/grafana-dashboard.json").read_text())
    queries = [
        (panel["title"], target["expr"].replace("$__rate_interval", "1m"))
        for panel in dashboard["panels"]
        for target in panel.get("targets", [])
    ]
    assert len(queries) >= 15
    for title, query in queries:
        response = httpx.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5)
        assert response.status_code == 200, f"{title}: {response.text}"


def test_each_task_run_counts_its_state_and_the_cpu_of_its_thread(live_stack: LiveStack) -> None:
    """Which task costs the worker what: the load suite's accounting reads these counters (loadtests/machine.py).

    Last in this module: it places one more order, which the counts of the tests above do not include."""
    empty = {"runs": 0.0, "succeeded": 0.0, "cpu_s": 0.0}
    before = task_counters(live_stack.multiproc_dir).get(CAPTURE_TASK, empty)
    request_id = "req-task-cpu-0001"
    place_order(live_stack, request_id=request_id, key="obs-task-cpu-1")

    # This stack's provider is unreachable on purpose (the Sentry tests): the first run ends in RETRY.
    finished = first_capture_task_line(live_stack, request_id=request_id, event="task finished")
    # The task's own thread: some CPU, never more than the time it took (the rest was waiting on the provider).
    assert 0 < finished["cpu_ms"] <= finished["duration_ms"]

    def counted() -> dict[str, float] | None:
        after = task_counters(live_stack.multiproc_dir).get(CAPTURE_TASK, empty)
        return after if after["runs"] > before["runs"] else None

    after = wait_for(counted, timeout_s=10, what="the capture task in shop_celery_tasks_total")
    assert after["cpu_s"] - before["cpu_s"] >= finished["cpu_ms"] / 1000 * 0.99
    with live_stack.client() as client:
        scraped = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    series = [line.split(" ")[0] for line in scraped.splitlines() if f'task="{CAPTURE_TASK}"' in line]
    assert f'shop_celery_task_cpu_seconds_total{{task="{CAPTURE_TASK}"}}' in series
    state = f'state="{finished["state"]}"'
    assert any(name.startswith("shop_celery_tasks_total{") and state in name for name in series), series
