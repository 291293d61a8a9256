"""The compose smoke test's checks, as a new customer and an operator would make them (deploy/smoke/run.sh).

Talks only to ports the stack publishes on 127.0.0.1 (the proxy over https, Prometheus), and into containers
with `docker compose exec` for what is never published (the simulator's /_stats, the database), and `docker cp`
for the mail the demo's sink kept in its volume (read with mail/mailbox.py, as the development page reads it).
TLS is verified against the stack's own CA, which Caddy made at first start. Prints each step with its time;
exits non-zero on the first failed check.

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
from collections import Counter
from collections.abc import Callable
from html import unescape
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[2]
# mail/mailbox.py is plain Python (no Django): the sink's reader the development page and the load audit use.
sys.path.insert(0, str(ROOT))
from mail.mailbox import StoredMessage, stored_message, stored_messages  # noqa: E402

_INPUT = re.compile(r"<input\b[^>]*>", re.IGNORECASE)
_ATTR = re.compile(r'(\w[\w-]*)\s*=\s*"([^"]*)"')
_ORDER_URL = re.compile(r"/orders/(\d+)/")
_PRODUCT_LINK = re.compile(r'href="(/p/[\w-]+/)"')
_CSS_LINK = re.compile(r'<link[^>]+href="(/static/[^"]+\.css)"')
_ADD_FORM = re.compile(r'action="(/cart/add/(\d+)/)"')
ADDRESS = {"name": "Smoke Tester", "line1": "1 Main St", "line2": "", "city": "Berlin", "postal_code": "10115"}
WORKER_KILL_ORDERS = 6
# The sink's directory in the mailsink container (docker-compose.yml, its mail_data volume).
MAIL_DIR = "/var/spool/shop-mail"
ORDER_MAIL = ("order_placed", "order_paid")
# Where order placement (the API's and the web checkout's) and payment promise their mail (mail/services.py, the
# table above order_mail_enqueue). Wired elsewhere, the outbox rows still tell (order_mail_wired).
ORDER_MAIL_CALLERS = ("orders/placement.py", "orders/services.py", "payments/services.py", "cart/services.py")


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


def form_fields(html: str, action: str | None) -> dict[str, str]:
    """Hidden and prefilled inputs of the form that posts to `action` (None: the first form posting to itself)."""
    start = html.find(f'action="{action}"') if action else html.find('<form method="post"')
    check(start != -1, f"no form posting to {action or 'the page itself'}")
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
        self.base = args.base.rstrip("/")
        self.work = Path(args.state).parent

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

    def mailbox(self) -> Path:
        """The demo sink's directory as it is now, copied out of its (never published) container."""
        container = subprocess.run(
            [*self.compose, "ps", "-q", "mailsink"], capture_output=True, text=True, check=True
        ).stdout.strip()
        check(container, "no mailsink container: the demo profile's mail sink is not running")
        target = self.work / f"mail-{time.monotonic_ns()}"
        copied = subprocess.run(
            ["docker", "cp", f"{container}:{MAIL_DIR}/.", str(target)], capture_output=True, text=True, check=False
        )
        check(copied.returncode == 0, f"docker cp from the sink failed: {copied.stderr.strip()[-300:]}")
        return target

    def messages(self) -> tuple[Path, list[StoredMessage]]:
        box = self.mailbox()
        return box, stored_messages(box, limit=10**6)

    # --- state shared between the steps (one process per step group) ----------------------------------------
    def save(self, **values: Any) -> None:
        with open(self.state_file, "w") as state:
            json.dump(values, state)

    def load(self) -> dict[str, Any]:
        with open(self.state_file) as state:
            return dict(json.load(state))


# --- Mail the demo's sink received ----------------------------------------------------------------------------


def order_mail_wired(stack: Stack, order_ids: list[int]) -> str | None:
    """Why order mail is owed for these orders (the code promises it, or the outbox holds it), or None."""
    callers = [path for path in ORDER_MAIL_CALLERS if "order_mail_enqueue(" in (ROOT / path).read_text()]
    if callers:
        return f"order_mail_enqueue is called in {' and '.join(callers)}"
    ids = ",".join(str(order_id) for order_id in order_ids)
    rows = stack.sql(f"SELECT count(*) FROM mail_outboxmessage WHERE order_id IN ({ids})")
    return f"the outbox holds {rows[0][0]} order mail rows" if rows and rows[0][0] != "0" else None


def order_mail_once(stack: Stack, numbers: dict[int, str], *, timeout_s: float) -> str:
    """Each order: one outbox row per event of ORDER_MAIL, sent, and one message (one Message-ID) in the sink."""
    ids = ",".join(str(order_id) for order_id in numbers)
    events = ",".join(f"'{event}'" for event in ORDER_MAIL)

    rows: list[list[str]] = []

    def all_sent() -> list[list[str]] | None:
        rows[:] = stack.sql(
            f"SELECT order_id, event, status FROM mail_outboxmessage WHERE order_id IN ({ids}) AND event IN ({events})"
        )
        per_event = Counter((int(order_id), event) for order_id, event, _ in rows)
        check(all(count == 1 for count in per_event.values()), f"several outbox rows for one event: {per_event}")
        done = len(per_event) == len(numbers) * len(ORDER_MAIL) and all(status == "sent" for *_, status in rows)
        return rows if done else None

    try:
        wait_for(f"{' and '.join(ORDER_MAIL)} mail sent for every order", all_sent, timeout_s=timeout_s, every_s=3)
    except SmokeFailure as failure:
        raise SmokeFailure(f"{failure}; outbox rows (order, event, status): {rows}") from None
    _, messages = stack.messages()
    wanted = set(numbers.values())
    mine = [message for message in messages if message.event in ORDER_MAIL and message.order in wanted]
    per_order = Counter((message.order, message.event) for message in mine)
    for number in sorted(wanted):
        for event in ORDER_MAIL:
            check(per_order[(number, event)] == 1, f"order {number}: {per_order[(number, event)]} {event} messages")
    resends = sum(message.deliveries - 1 for message in mine)
    return (
        f"{len(numbers)} orders x {'/'.join(ORDER_MAIL)}: one sent row and one message each "
        f"({resends} resends recognised by Message-ID)"
    )


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

    email = f"{username}@example.com"
    link: dict[str, str] = {}

    def verification_mail() -> str:
        def arrived() -> tuple[Path, list[StoredMessage]] | None:
            box, messages = stack.messages()
            found = [message for message in messages if message.event == "verify_email" and email in message.to]
            return (box, found) if found else None

        box, found = wait_for("the verification mail in the sink", arrived, timeout_s=90, every_s=2)
        check(len(found) == 1, f"{len(found)} verification messages to {email}")
        message = stored_message(box, found[0].name)
        assert message is not None
        # SHOP_BASE_URL: the link points at the address the customer uses (the proxy's https port here).
        url = re.search(r"https?://\S+/accounts/verify/\S+/", message.text)
        check(url, f"no confirmation link in the message: {message.text[:400]}")
        assert url is not None
        check(url.group(0).startswith(stack.base + "/"), f"the link {url.group(0)} is not under {stack.base}")
        link["url"] = url.group(0)
        return f"X-Shop-Event verify_email to {email}, {message.deliveries} delivery, link under {stack.base}"

    def confirm_address() -> str:
        path = urlsplit(link["url"]).path
        page = web.get(path)
        check(page.status_code == 200, f"the confirmation link answered {page.status_code}")
        response = web.post(path, data=form_fields(page.text, None), headers=referer(web, path))
        check(response.status_code in (302, 303), f"confirming answered {response.status_code}")
        rows = stack.sql(f"SELECT verified_email = email FROM accounts_user WHERE username = '{username}'")
        check(rows == [["t"]], f"the address is not verified after the link: {rows}")
        return "the mailed link, followed over https, verified the address"

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
        order["number"] = web.get(f"/api/v1/orders/{order['id']}/", headers=bearer).json()["number"]
        stack.save(username=username, password=password, first_order=order["id"], first_number=order["number"])
        return "paid (API and order page)"

    def order_mail() -> str:
        why = order_mail_wired(stack, [order["id"]])
        if why is None:
            return "skipped: order placement and payment promise no mail yet (no order_mail_enqueue call)"
        return f"{why}; " + order_mail_once(stack, {order["id"]: str(order["number"])}, timeout_s=90)

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
    step("the verification mail reaches the demo's sink", verification_mail)
    step("the mailed link confirms the address", confirm_address)
    step("add a product to the cart", add_to_cart)
    step("check out", check_out)
    step("the order reaches paid", reaches_paid)
    step("order mail: one confirmation and one receipt", order_mail)
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
    placed: dict[int, str] = {}

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
            placed[int(response.json()["id"])] = str(response.json()["number"])
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

    def mail_once() -> str:
        numbers = {state["first_order"]: str(state["first_number"]), **placed}
        why = order_mail_wired(stack, list(numbers))
        if why is None:
            return "skipped: order placement and payment promise no mail yet (no order_mail_enqueue call)"
        # A mail task killed mid-send waits for its lease (MAIL_CLAIM_LEASE_S) and the re-drive.
        return f"{why}; " + order_mail_once(stack, numbers, timeout_s=180)

    step("every order settles, once", all_settle_once)
    step("every order's mail, once, after the kill", mail_once)


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
