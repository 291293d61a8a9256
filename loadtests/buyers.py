"""Buyers: sign in (or register), look around, place orders through the API with an Idempotency-Key.

Some double-click (two identical submissions in parallel, one key), some retry after a client-side timeout
with the same key, some reuse a key for a different order (422), some abandon before paying. The rush fights
over a few products with very little stock.
"""

from __future__ import annotations

import random
from typing import Any

import gevent
from locust import FastHttpUser, between, task

from loadtests.common import (
    CATALOG,
    LEDGER,
    PASSWORD_SIGNIN_SHARE,
    Result,
    Session,
    call,
    new_key,
    order_payload,
    refresh_if_old,
    register,
    resume,
    sign_in,
)

PLACE = "POST /api/v1/orders/"
# What a single, well-behaved submission may be told: created, or refused for want of stock or a busy row.
PLACE_EXPECT = {"201", "409 insufficient_stock", "409 busy"}
# A second submission with the same key while the first still runs is told to wait (409 request_in_flight).
PARALLEL_EXPECT = PLACE_EXPECT | {"409 request_in_flight"}


def report_violation(user: FastHttpUser, name: str, detail: str) -> None:
    """A client-side invariant broke (e.g. two orders for one key): a failure in locust's table, by name."""
    user.environment.events.request.fire(
        request_type="CHECK",
        name=name,
        response_time=0,
        response_length=0,
        exception=AssertionError(detail),
        context={"outcome": "violation", "expected": False},
    )


class CustomerUser(FastHttpUser):
    """A signed-in customer. Subclasses decide what they do with the session."""

    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0
    register_share = 0.0
    pool = "buyers"
    session: Session | None = None

    def on_start(self) -> None:
        self.placed: list[int] = []  # ids of the orders this user placed in this run
        # Arrive, look around first, then sign in: a crowd does not type its passwords in the same second.
        for _ in range(random.randint(1, 3)):
            call(self, "GET", "/api/v1/products/?page_size=20", name="GET /api/v1/products/", expect={"200"})
            gevent.sleep(random.uniform(1, 3))
        self.sign_in()

    def sign_in(self) -> None:
        self.session = None
        roll = random.random()
        if roll < self.register_share:
            self.session = register(self)
        elif roll > self.register_share + PASSWORD_SIGNIN_SHARE:
            self.session = resume(self, self.pool)
        if self.session is None and (CATALOG.buyers if self.pool == "buyers" else CATALOG.curious):
            self.session = sign_in(self, CATALOG.account(self.pool))

    def ready(self) -> Session | None:
        if self.session is None:
            self.sign_in()
        if self.session is not None:
            refresh_if_old(self, self.session)
        return self.session

    def place(self, payload: dict[str, Any], key: str, *, expect: set[str], via: str = "api") -> Result:
        session = self.session
        assert session is not None
        result = call(
            self,
            "POST",
            "/api/v1/orders/",
            name=PLACE,
            expect=expect,
            token=session.access,
            headers={"Idempotency-Key": key},
            json_body=payload,
        )
        if result.status == 401:
            self.session = None  # token expired or revoked: sign in again on the next task
        if result.status == 201 and isinstance(result.data, dict):
            replayed = result.headers.get("idempotent-replayed") == "true"
            LEDGER.order_accepted(username=session.username, key=key, order=result.data, via=via, replayed=replayed)
            CATALOG.note_order(int(result.data["id"]), session.username)
            self.placed.append(int(result.data["id"]))
        return result

    def retry_in_flight(self, payload: dict[str, Any], key: str, first: Result) -> Result:
        """What a polite client does with 409 request_in_flight: wait Retry-After, send the same key again."""
        result = first
        for _ in range(10):
            if result.outcome != "409 request_in_flight":
                return result
            gevent.sleep(float(result.headers.get("retry-after", "1")))
            result = self.place(payload, key, expect=PARALLEL_EXPECT)
        return result

    def pick_products(self, count: int) -> list[int]:
        return random.sample(CATALOG.product_ids, k=min(count, len(CATALOG.product_ids)))

    def orders_agree(self, key: str, results: list[Result]) -> None:
        ids = {r.data["id"] for r in results if r.status == 201 and isinstance(r.data, dict)}
        if len(ids) > 1:
            report_violation(self, "CHECK one order per key", f"key {key} produced orders {sorted(ids)}")


class ApiBuyer(CustomerUser):
    """Signs in, browses, and buys through the API, in all the clumsy ways real clients do."""

    weight = 4
    wait_time = between(2, 6)
    register_share = 0.05

    @task(2)
    def browse(self) -> None:
        call(self, "GET", "/api/v1/products/?page_size=20", name="GET /api/v1/products/", expect={"200"})
        if CATALOG.product_ids:
            product_id = random.choice(CATALOG.product_ids)
            call(self, "GET", f"/api/v1/products/{product_id}/", name="GET /api/v1/products/[id]/", expect={"200"})

    @task(6)
    def buy(self) -> None:
        if self.ready() is None or not CATALOG.product_ids:
            return
        payload = order_payload(self.pick_products(random.randint(1, 3)))
        key = new_key("api")
        style = random.random()
        if style < 0.6:
            results = [self.place(payload, key, expect=PLACE_EXPECT)]
        elif style < 0.78:
            results = self.double_click(payload, key)
        elif style < 0.93:
            results = self.retry_after_timeout(payload, key)
        else:
            self.abandon()
            return
        self.orders_agree(key, results)
        created = next((r for r in results if r.status == 201), None)
        if created is None:
            return
        self.after_order(created, payload, key)

    def double_click(self, payload: dict[str, Any], key: str) -> list[Result]:
        """Two identical submissions at the same instant: one order, the other waits or gets the same one."""
        pair = [
            gevent.spawn(self.place, payload, key, expect=PARALLEL_EXPECT, via="api-double-click") for _ in range(2)
        ]
        gevent.joinall(pair)
        results = [greenlet.value for greenlet in pair if greenlet.value is not None]
        if not any(r.status == 201 for r in results):
            in_flight = next((r for r in results if r.outcome == "409 request_in_flight"), None)
            if in_flight is not None:
                results.append(self.retry_in_flight(payload, key, in_flight))
        return results

    def retry_after_timeout(self, payload: dict[str, Any], key: str) -> list[Result]:
        """The client gives up waiting after a few hundred ms and resends the same key; the first runs on."""
        original = gevent.spawn(self.place, payload, key, expect=PARALLEL_EXPECT, via="api-timed-out")
        gevent.sleep(random.uniform(0.005, 0.3))
        retry = self.retry_in_flight(payload, key, self.place(payload, key, expect=PARALLEL_EXPECT, via="api-retry"))
        original.join()
        return [r for r in (original.value, retry) if r is not None]

    def abandon(self) -> None:
        """Builds a cart in their head, looks at their order history, and leaves without buying."""
        assert self.session is not None
        for product_id in self.pick_products(2):
            call(self, "GET", f"/api/v1/products/{product_id}/", name="GET /api/v1/products/[id]/", expect={"200"})
        call(self, "GET", "/api/v1/orders/", name="GET /api/v1/orders/", expect={"200"}, token=self.session.access)

    def after_order(self, created: Result, payload: dict[str, Any], key: str) -> None:
        assert self.session is not None
        order_id = created.data["id"]
        roll = random.random()
        if roll < 0.5:
            call(
                self,
                "GET",
                f"/api/v1/orders/{order_id}/",
                name="GET /api/v1/orders/[id]/",
                expect={"200"},
                token=self.session.access,
            )
        elif roll < 0.6:
            # Replay: the same request again (a browser's "resubmit?") gets the first answer, marked replayed.
            again = self.place(payload, key, expect={"201"}, via="api-replay")
            if again.status == 201 and again.headers.get("idempotent-replayed") != "true":
                report_violation(self, "CHECK replay is marked", f"key {key} answered 201 without Idempotent-Replayed")
            self.orders_agree(key, [created, again])
        elif roll < 0.7:
            # Reused key: a different order under an old key is refused, never silently merged or duplicated.
            other = order_payload(self.pick_products(1), note="different order, same key")
            if other != payload:
                self.place(other, key, expect={"422 idempotency_key_reused"})
        elif roll < 0.8:
            status = random.choice(["pending_payment", "paid", "cancelled"])
            call(
                self,
                "GET",
                f"/api/v1/orders/?status={status}",
                name="GET /api/v1/orders/?status=",
                expect={"200"},
                token=self.session.access,
            )


class RushBuyer(CustomerUser):
    """Many buyers, a few products, very little stock: most are told 409 insufficient_stock, none oversold."""

    weight = 2
    wait_time = between(1, 3)

    @task(5)
    def grab(self) -> None:
        if self.ready() is None or not CATALOG.rush_product_ids:
            return
        product_id = random.choice(CATALOG.rush_product_ids)
        payload = order_payload([product_id], max_quantity=2, note="rush")
        self.place(payload, new_key("rush"), expect=PLACE_EXPECT, via="api-rush")

    @task(1)
    def change_mind(self) -> None:
        """Cancel a rush order: the unit goes back on the shelf for the next buyer (and must be counted once)."""
        if self.ready() is None:
            return
        assert self.session is not None
        mine = call(
            self,
            "GET",
            "/api/v1/orders/?status=pending_payment",
            name="GET /api/v1/orders/?status=",
            expect={"200"},
            token=self.session.access,
        )
        listed = {order["id"] for order in mine.data.get("results", [])} if isinstance(mine.data, dict) else set()
        # Only orders of this run: an account's older orders belong to earlier runs (and their provider).
        orders = [{"id": order_id} for order_id in self.placed if order_id in listed] or [
            {"id": order_id} for order_id in self.placed[-3:]
        ]
        if orders:
            order_id = random.choice(orders)["id"]
            call(
                self,
                "POST",
                f"/api/v1/orders/{order_id}/cancel/",
                name="POST /api/v1/orders/[id]/cancel/",
                expect={"200", "409 not_cancellable", "409 busy"},
                token=self.session.access,
            )
