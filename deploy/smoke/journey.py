"""The compose smoke test's checks, as a new customer and an operator would make them (deploy/smoke/run.sh).

Talks only to ports the stack publishes on 127.0.0.1 (the proxy over https, Prometheus), and into containers
with `docker compose exec` for what is never published (the simulator's /_stats, the database). TLS is verified
against the stack's own CA, which Caddy made at first start. Prints each step with its time; exits non-zero on
the first failed check.

    python deploy/smoke/journey.py --base https://localhost:18443 --ca root.crt --prometheus http://127.0.0.1:19090 \
        --compose "docker-compose -p smoke -f docker-compose.yml -f ..." journey|metrics|worker-kill
"""

from __future__ import annotations

import argparse
import json
import re
import secrets
import shlex
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from html import unescape
from typing import Any

import httpx

_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'(\w[\w-]*)\s*=\s*"([^"]*)"')
_ORDER_URL = re.compile(r"/orders/(\d+)/")
_PRODUCT_LINK = re.compile(r'href="(/p/[\w-]+/)"')
_CSS_LINK = re.compile(r'<link[^>]+href="(/static/[^"]+\.css)"')
_ADD_FORM = re.compile(r'action="(/cart/add/(\d+)/)"')
ADDRESS = {"name": "Smoke Tester", "line1": "1 Main St", "line2": "", "city": "Berlin", "postal_code": "10115"}
WORKER_KILL_ORDERS = 6


class SmokeFailure(AssertionError):
    pass


def check(condition: object, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def step(name: str, action: Callable[[], str | None]) -> None:
    started = time.monotonic()
    detail = action()
    print(f"[smoke] {time.monotonic() - started:6.1f}s  {name}" + (f": {detail}" if detail else ""), flush=True)


def wait_for(what: str, probe: Callable[[], Any], *, timeout_s: float, every_s: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every_s)
    raise SmokeFailure(f"timed out after {timeout_s:.0f}s waiting for {what} (last: {last!r})")


def form_fields(html: str, action: str) -> dict[str, str]:
    """Hidden and prefilled inputs of the form that posts to `action`."""
    start = html.find(f'action="{action}"')
    check(start != -1, f"no form posting to {action}")
    fields: dict[str, str] = {}
    for tag in _INPUT.findall(html[start : html.find("</form>", start)]):
        attrs = {name.lower(): unescape(value) for name, value in _ATTR.findall(tag)}
        if "name" in attrs:
            fields[attrs["name"]] = attrs.get("value", "")
    return fields


def referer(web: httpx.Client, path: str) -> dict[str, str]:
    # Over https Django's CSRF check wants a same-origin Referer, as a browser sends.
    return {"Referer": str(web.base_url).rstrip("/") + path}


class Stack:
    def __init__(self, args: argparse.Namespace) -> None:
        context = ssl.create_default_context(cafile=args.ca)
        # Only 127.0.0.1: the stack publishes its ports there and nowhere else.
        transport = httpx.HTTPTransport(verify=context, local_address="127.0.0.1", retries=2)
        self.web = httpx.Client(base_url=args.base, transport=transport, timeout=15, follow_redirects=False)
        self.prometheus = httpx.Client(base_url=args.prometheus, timeout=10)
        self.compose = shlex.split(args.compose)
        self.state_file = args.state

    # --- into the containers (nothing here is published) ---------------------------------------------------
    def exec(self, service: str, *command: str) -> str:
        result = subprocess.run(
            [*self.compose, "exec", "-T", service, *command], capture_output=True, text=True, timeout=60, check=False
        )
        check(result.returncode == 0, f"{service}: {' '.join(command)} failed: {result.stderr.strip()[-500:]}")
        return result.stdout

    def sql(self, query: str) -> list[list[str]]:
        out = self.exec("postgres", "psql", "-U", "postgres", "-d", "shop", "-AtF", "\t", "-c", query)
        return [line.split("\t") for line in out.splitlines() if line]

    def simulator(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        # /_control and /_stats need the control token (PAYMENT_SIMULATOR_CONTROL_TOKEN, set in the demo profile).
        script = (
            "import os, sys, urllib.request as u\n"
            "token = os.environ.get('PAYMENT_SIMULATOR_CONTROL_TOKEN', '')\n"
            "headers = {'Content-Type': 'application/json'}\n"
            "headers.update({'Authorization': 'Bearer ' + token} if token else {})\n"
            "method, url, body = sys.argv[1:4]\n"
            "request = u.Request(url, data=body.encode() or None, headers=headers, method=method)\n"
            "print(u.urlopen(request, timeout=10).read().decode())\n"
        )
        payload = json.dumps(body) if body is not None else ""
        out = self.exec("provider", "python", "-c", script, method, f"http://127.0.0.1:8100{path}", payload)
        return dict(json.loads(out))

    # --- state shared between the steps (one process per step group) ----------------------------------------
    def save(self, **values: Any) -> None:
        with open(self.state_file, "w") as state:
            json.dump(values, state)

    def load(self) -> dict[str, Any]:
        with open(self.state_file) as state:
            return dict(json.load(state))


# --- The customer's journey --------------------------------------------------------------------------------


def journey(stack: Stack) -> None:
    web = stack.web
    pages: dict[str, str] = {}

    def home() -> str:
        page = web.get("/")
        check(page.status_code == 200, f"home page answered {page.status_code}")
        css = _CSS_LINK.search(page.text)
        check(css, "home page links no stylesheet")
        assert css is not None
        sheet = web.get(css.group(1))
        check(sheet.status_code == 200, f"{css.group(1)} answered {sheet.status_code}")
        check(sheet.headers.get("content-type", "").startswith("text/css"), f"stylesheet is {sheet.headers}")
        check(len(sheet.content) > 100, "empty stylesheet")
        check("Strict-Transport-Security" in page.headers, "no HSTS header: not in production mode?")
        pages["home"] = page.text
        return f"200, {css.group(1)} {len(sheet.content)} bytes, HSTS on"

    username = f"smoke-{uuid.uuid4().hex[:8]}"
    password = secrets.token_urlsafe(16)

    def sign_up() -> str:
        form = form_fields(web.get("/accounts/signup/").text, "/accounts/signup/")
        form.update(username=username, email=f"{username}@example.com", password=password, password_confirm=password)
        response = web.post("/accounts/signup/", data=form, headers=referer(web, "/accounts/signup/"))
        check(response.status_code in (302, 303), f"sign-up answered {response.status_code}: {response.text[:300]}")
        check("sessionid" in web.cookies, "signed up but not signed in")
        return f"{username}, signed in"

    def add_to_cart() -> str:
        for link in dict.fromkeys(_PRODUCT_LINK.findall(pages["home"])):
            page = web.get(link)
            found = _ADD_FORM.search(page.text)
            if page.status_code == 200 and found:
                form = form_fields(page.text, found.group(1))
                form["quantity"] = "1"
                response = web.post(found.group(1), data=form, headers=referer(web, link))
                check(response.status_code in (302, 303), f"add to cart answered {response.status_code}")
                return f"{link} (product {found.group(2)})"
        raise SmokeFailure("no product on the home page can be bought")

    order: dict[str, Any] = {}

    def check_out() -> str:
        page = web.get("/cart/checkout/")
        check(page.status_code == 200, f"checkout page answered {page.status_code}")
        form = form_fields(page.text, "/cart/checkout/")
        check("idempotency_key" in form, "checkout form has no idempotency key")
        form.update(ADDRESS, country="DE", note="compose smoke")
        response = web.post("/cart/checkout/", data=form, headers=referer(web, "/cart/checkout/"))
        check(response.status_code == 303, f"checkout answered {response.status_code}: {response.text[:300]}")
        match = _ORDER_URL.search(response.headers.get("location", ""))
        check(match, f"checkout redirected to {response.headers.get('location')}")
        assert match is not None
        order["id"] = int(match.group(1))
        return f"order {order['id']}"

    def reaches_paid() -> str:
        token = web.post("/api/v1/auth/token/", json={"username": username, "password": password})
        check(token.status_code == 200, f"token endpoint answered {token.status_code}")
        bearer = {"Authorization": f"Bearer {token.json()['access']}"}
        stack.save(username=username, password=password, first_order=order["id"])

        def status() -> str | None:
            current = web.get(f"/api/v1/orders/{order['id']}/", headers=bearer).json()["status"]
            check(current in ("pending_payment", "paid"), f"order went to {current}")
            return current if current == "paid" else None

        wait_for("the order to be paid", status, timeout_s=90)
        page = web.get(f"/orders/{order['id']}/")
        check(page.status_code == 200 and "Paid" in page.text, "the order page does not say Paid")
        return "paid (API and order page)"

    def readyz() -> str:
        response = web.get("/readyz")
        check(response.status_code == 200, f"/readyz answered {response.status_code}: {response.text}")
        body = response.json()
        check(body["checks"] == {"database": "ok", "cache": "ok", "broker": "ok"}, f"/readyz: {body}")
        check(body.get("demo_mode") is True, "the demo stack does not report its demo mode")
        serving = web.get("/readyz/serving")
        check(serving.status_code == 200, f"/readyz/serving answered {serving.status_code}")
        return "200 (database, cache, broker), demo_mode reported; /readyz/serving 200"

    step("home page 200 with its CSS over https", home)
    step("sign up as a new customer", sign_up)
    step("add a product to the cart", add_to_cart)
    step("check out", check_out)
    step("the order reaches paid", reaches_paid)
    step("/readyz", readyz)


# --- What the operator sees in Prometheus ----------------------------------------------------------------------


def metrics(stack: Stack) -> None:
    prometheus = stack.prometheus

    def query(expr: str) -> list[dict[str, Any]]:
        response = prometheus.get("/api/v1/query", params={"query": expr})
        check(response.status_code == 200, f"Prometheus answered {response.status_code}")
        return list(response.json()["data"]["result"])

    def targets_up() -> str:
        def up() -> dict[str, str] | None:
            targets = prometheus.get("/api/v1/targets").json()["data"]["activeTargets"]
            health = {target["labels"]["job"]: target["health"] for target in targets}
            return health if health.get("shop") == "up" and health.get("shop-worker") == "up" else None

        return f"{wait_for('web and worker targets up', up, timeout_s=60, every_s=2)}"

    def payment_metrics() -> str:
        def present() -> list[dict[str, Any]] | None:
            return query('sum(shop_payment_attempts_total{job="shop-worker"}) > 0') or None

        result = wait_for("payment attempts from the worker", present, timeout_s=60, every_s=3)
        ready = query('shop_ready{job="shop"}')
        check(ready and ready[0]["value"][1] == "1", f"shop_ready is {ready}")
        return f"shop_payment_attempts_total from the worker = {result[0]['value'][1]}, shop_ready = 1"

    step("Prometheus: web and worker targets up", targets_up)
    step("Prometheus: payment metrics present", payment_metrics)


# --- The worker killed mid-run ----------------------------------------------------------------------------------


def worker_kill(stack: Stack) -> None:
    web = stack.web
    state = stack.load()
    token = web.post("/api/v1/auth/token/", json={"username": state["username"], "password": state["password"]})
    bearer = {"Authorization": f"Bearer {token.json()['access']}"}
    product = web.get("/api/v1/products/", params={"page_size": 50}).json()["results"]
    product_id = max(product, key=lambda p: p["stock_available"])["id"]
    placed: list[int] = []

    def slow_provider_and_orders() -> str:
        # Every charge now takes 2 s at the provider: the kill below lands while charges are in flight.
        stack.simulator("POST", "/_control", {"latency_ms": 2000})
        for n in range(WORKER_KILL_ORDERS):
            response = web.post(
                "/api/v1/orders/",
                json={
                    "lines": [{"product_id": product_id, "quantity": 1}],
                    "shipping_address": {**ADDRESS, "country": "DE"},
                },
                headers={**bearer, "Idempotency-Key": f"smoke-kill-{uuid.uuid4()}"},
            )
            check(response.status_code == 201, f"order {n} answered {response.status_code}: {response.text[:200]}")
            placed.append(int(response.json()["id"]))
        before = stack.simulator("GET", "/_stats")["requests"]
        wait_for("a charge in flight", lambda: stack.simulator("GET", "/_stats")["requests"] > before, timeout_s=20)
        return f"{len(placed)} orders placed, provider latency 2 s"

    def kill() -> str:
        stack.exec("postgres", "true")  # the stack is still there
        container = subprocess.run(
            [*stack.compose, "ps", "-q", "worker"], capture_output=True, text=True, check=True
        ).stdout.strip()
        subprocess.run(["docker", "kill", "--signal", "KILL", container], check=True, capture_output=True)
        return f"docker kill -s KILL {container[:12]}"

    def restart() -> str:
        stack.simulator("POST", "/_control", {"latency_ms": 0})
        subprocess.run([*stack.compose, "start", "worker"], check=True, capture_output=True)
        return "docker compose start worker; provider latency back to 0"

    def all_settle_once() -> str:
        orders = [state["first_order"], *placed]

        def settled() -> bool:
            rows = web.get("/api/v1/orders/", headers=bearer, params={"page_size": 100}).json()["results"]
            statuses = {row["id"]: row["status"] for row in rows if row["id"] in orders}
            check(all(s in ("pending_payment", "paid") for s in statuses.values()), f"statuses: {statuses}")
            return len(statuses) == len(orders) and set(statuses.values()) == {"paid"}

        wait_for("every order to be paid after the kill", settled, timeout_s=150, every_s=3)
        ids = ",".join(str(order_id) for order_id in orders)
        rows = stack.sql(
            f"SELECT o.id, count(p.id) FILTER (WHERE p.status = 'captured'), count(p.id) "
            f"FROM orders_order o LEFT JOIN payments_payment p ON p.order_id = o.id WHERE o.id IN ({ids}) GROUP BY o.id"
        )
        check(len(rows) == len(orders), f"orders in the database: {rows}")
        for order_id, captured, payments in rows:
            check(captured == "1" and payments == "1", f"order {order_id}: {captured} captured of {payments} payments")
        keys = [row[0] for row in stack.sql(f"SELECT idempotency_key FROM payments_payment WHERE order_id IN ({ids})")]
        per_key = stack.simulator("GET", "/_stats")["charges_per_key"]
        charged = {key: per_key.get(key, 0) for key in keys}
        check(all(times == 1 for times in charged.values()), f"charges per payment key: {charged}")
        return f"{len(orders)} orders paid, one captured payment each, each key charged exactly once at the provider"

    step("orders placed with the provider slowed down", slow_provider_and_orders)
    step("worker container killed mid-run", kill)
    step("worker restarted", restart)
    step("every order settles, once", all_settle_once)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("phase", choices=["journey", "metrics", "worker-kill"])
    parser.add_argument("--base", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--prometheus", required=True)
    parser.add_argument("--compose", required=True)
    parser.add_argument("--state", required=True)
    args = parser.parse_args()
    stack = Stack(args)
    try:
        {"journey": journey, "metrics": metrics, "worker-kill": worker_kill}[args.phase](stack)
    except (SmokeFailure, httpx.HTTPError) as failure:
        print(f"[smoke] FAILED: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
