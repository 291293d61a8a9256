"""A stateful model of the order and payment lifecycle, run by Hypothesis against the real shop.

Real PostgreSQL (through PgBouncer), the real provider simulator over HTTP, the real services and API. Hypothesis
writes programs of steps: customers place orders (reusing keys, with the same or another payload), capture tasks
are delivered (once, twice at once, or with the worker killed after the provider answered), tasks get lost,
reconciliation and re-drive run with the clock moved forward (a virtual clock behind Django's `timezone.now`,
passed as `now=`; nothing sleeps), customers cancel (also while a capture runs, in real threads),
Idempotency-Key records are purged, orders ship, and the provider is told to misbehave on its next calls
(payments/simulator.py faults: decline, lose the answer after charging, answer late, time out, 5xx or 503 before
any work, an undecided status, 200 whatever happened; an outage; every card declined).

The broker is modelled, not used: the services' two enqueue seams (`payments.tasks.payment_capture_enqueue`,
`payment_refund_enqueue`) put messages on the model's queue, and a step delivers one by running the task's body.
A delivery that raises ProviderUnavailable goes back on the queue (Celery's autoretry), until its retries run out
and the message is gone (the re-drive job must find the order). A killed worker's message comes back
(acks_late + reject_on_worker_lost).

After every step the invariants hold; after the last step the model drains (faults off, every message delivered,
reconciliation past the abandon age) and then demands the exact end state:
- the provider's successful charges are exactly the captured payments (refunded ones included);
- no order is paid, and no payment captured, without a successful charge; no key is charged twice;
- every cancelled order whose payment was taken is refunded exactly once, and nothing else is refunded;
- stock received = on hand + held by live orders, and payment_failed or cancelled orders hold none;
- one order per accepted key, and the key's answers are consistent (replay for the same request, 422 for
  another, at any age).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
from django.conf import settings
from django.db.models import Sum
from django.utils import timezone
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule
from rest_framework.test import APIClient

from core.errors import ApplicationError
from idempotency.services import idempotency_purge_expired
from observability.invariants import check_all
from orders.models import STATUSES_HOLDING_STOCK, STATUSES_WITHOUT_STOCK, Order, OrderLine, OrderStatus
from orders.services import order_cancel, order_fulfil
from payments.breaker import provider_breaker
from payments.client import ProviderUnavailable
from payments.models import PaymentStatus
from payments.services import payment_capture, payment_reconcile, payment_refund
from shop.models import Product
from tests.capacity.infra import ProviderSimulator
from tests.concurrency import run_concurrently
from tests.conftest import DEFAULT_ADDRESS, bearer_client
from tests.factories import ProductFactory, UserFactory
from tests.lifecycle.figures import Figures

CAPTURE, REFUND = "capture", "refund"
CAPTURE_RETRIES = 5  # payments/tasks.py max_retries
REFUND_RETRIES = 10
STOCK_PER_PRODUCT = 3
# Each payload is a list of (product index, quantity); a key reused with another payload is another request.
PAYLOADS: list[list[tuple[int, int]]] = [[(0, 1)], [(0, 2)], [(1, 1)], [(0, 1), (1, 1)]]
KEYS = ["k0", "k1", "k2"]
# (customer index, Idempotency-Key, payload index). Each rule takes one argument: Hypothesis orders rules by
# their number of arguments and favours the first, which is the worker here (broker_delivers), on purpose.
ORDER_REQUESTS = st.tuples(st.integers(0, 1), st.sampled_from(KEYS), st.integers(0, len(PAYLOADS) - 1))
FAULT_KINDS = ["lose_answer", "timeout", "decline", "error", "unavailable", "late_answer", "ok_status", "odd_status"]
SLOW_FAULTS = {"timeout", "late_answer"}  # these cost a client timeout each: asked for one call at a time
STANDING_MOODS: dict[str, dict[str, Any]] = {
    "outage": {"outage": True},
    "recovers": {"outage": False, "decline_rate": 0.0},
    "declines_every_card": {"decline_rate": 1.0},
}
ENDPOINTS = ["charge", "charge", "refund", "lookup", "any"]  # charges are where the money is: asked for twice
# (kind, for how many calls, on which endpoint): one fault the simulator applies to the next matching calls.
FAULTS = st.tuples(st.sampled_from(FAULT_KINDS), st.integers(1, 3), st.sampled_from(ENDPOINTS))
# Before a delivery: what the next new charge becomes (an outcome fault), and what happens to the calls (a
# delivery fault). Drawn apart, so "declined, and the answer lost" is a common program, not a rare one.
CARD_OUTCOMES = [None, "decline", "decline", "odd_status"]
DELIVERY_FAULTS = st.tuples(
    st.sampled_from([kind for kind in FAULT_KINDS if kind not in ("decline", "odd_status")]),
    st.integers(1, 3),
    st.sampled_from(ENDPOINTS),
)
WORKER_ACTIONS = ["deliver", "deliver", "deliver_twice_at_once", "kill_mid_task", "lose"]
ADVANCE = {
    "now": lambda: 0,
    "redrive": lambda: settings.PAYMENT_REDRIVE_AFTER_S + 1,
    "abandon": lambda: settings.PAYMENT_ABANDON_AFTER_S + 1,
}
CLIENT_TIMEOUT_S = 0.25
SLOW_FAULT_DELAY_MS = 350


def fuzz_level() -> str:
    return os.environ.get("SHOP_FUZZ_LEVEL", "ci") or "ci"


def rerun_command() -> str:
    if fuzz_level() == "fuzz":
        return "SHOP_FUZZ_LEVEL=fuzz .venv/bin/pytest tests/lifecycle   (part of make fuzz)"
    return ".venv/bin/pytest tests/lifecycle   (part of make test; SHOP_FUZZ_LEVEL=fuzz for the longer run)"


def model_settings(*, twin: bool = False) -> hypothesis_settings:
    """make test: 200 programs of up to 15 steps from a fixed seed (two or three minutes on two busy cores).
    make fuzz (SHOP_FUZZ_LEVEL=fuzz): 500 programs of up to 30 steps from a random seed (Hypothesis prints the
    blob that reproduces a failure)."""
    fuzz = fuzz_level() == "fuzz" and not twin
    examples = int(os.environ.get("SHOP_LIFECYCLE_EXAMPLES") or (500 if fuzz else 200))  # fewer while iterating
    return hypothesis_settings(
        max_examples=examples,
        stateful_step_count=30 if fuzz else 15,
        derandomize=not fuzz,
        database=None,
        deadline=None,
        print_blob=fuzz,
        report_multiple_bugs=False,
        # The twin only has to find the defect; shrinking its program would re-run it many times.
        phases=[Phase.explicit, Phase.generate] if twin else list(Phase),
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


class WorkerKilled(BaseException):
    """The worker process died mid-task (SIGKILL, OOM): nothing in the task can catch it."""


@dataclass(frozen=True)
class Row:
    """One order of the example, with its payment, as the invariants read it."""

    order_id: int
    status: str
    customer_id: int
    key: str
    stock_released_at: Any
    payment_status: str | None
    payment_key: str | None


@dataclass
class Message:
    kind: str
    order_id: int
    retries: int = 0


@dataclass
class VirtualClock:
    """The shop's one clock (Django's `timezone.now`, a named seam), moved forward by the model instead of slept.

    Monotonic, and shared by everything that stamps or compares times (placement, attempts, re-drive, leases,
    the jobs' `now=`), so an attempt in flight and the job that looks at it agree on what "a minute ago" is.
    """

    real_now: Any
    offset_s: float = 0.0

    def now(self) -> Any:
        return self.real_now() + timedelta(seconds=self.offset_s)

    def advance(self, seconds: float) -> Any:
        self.offset_s += seconds
        return self.now()


@dataclass
class World:
    """What every example of one test run shares: the provider, the broker queue, the kill switch."""

    provider: ProviderSimulator
    figures: Figures
    broker: list[Message] = field(default_factory=list)
    kill_next_settle: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clock: VirtualClock = field(default_factory=lambda: VirtualClock(real_now=timezone.now))
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        # One kept-alive client for the simulator's controls: a fresh one per call costs more than the step.
        self.http = httpx.Client(base_url=self.provider.url, timeout=5)

    def control(self, **changes: Any) -> None:
        self.http.post("/_control", json=changes).raise_for_status()

    def stats(self) -> dict[str, Any]:
        answer: dict[str, Any] = self.http.get("/_stats").json()
        return answer

    def enqueue_capture(self, order_id: int) -> None:
        with self.lock:
            self.broker.append(Message(CAPTURE, order_id))

    def enqueue_refund(self, order_id: int) -> None:
        with self.lock:
            self.broker.append(Message(REFUND, order_id))

    def killable(self, settle: Any) -> Any:
        """Wrap a settle function (a named seam in payments.services) so the kill switch can stop the worker
        after the provider answered, before the answer is recorded."""

        def settle_or_die(**kwargs: Any) -> Any:
            if self.kill_next_settle.is_set():
                self.kill_next_settle.clear()
                raise WorkerKilled
            return settle(**kwargs)

        return settle_or_die


def install(world: World, monkeypatch: Any) -> None:
    """Point the shop at the simulator with fast, short-fused client settings, and install the model's seams."""
    import payments.services
    import payments.tasks

    overrides = {
        "PAYMENT_PROVIDER_URL": world.provider.url,
        "PAYMENT_PROVIDER_TIMEOUT_S": CLIENT_TIMEOUT_S,
        "PAYMENT_PROVIDER_CONNECT_TIMEOUT_S": 1.0,
        "PAYMENT_PROVIDER_MAX_ATTEMPTS": 3,
        "PAYMENT_PROVIDER_RETRY_BASE_S": 0.001,
        "PAYMENT_PROVIDER_RETRY_CAP_S": 0.005,
        "PAYMENT_BREAKER_THRESHOLD": 5,
        "PAYMENT_BREAKER_COOLDOWN_S": 0.1,
        "PAYMENT_BREAKER_PROBE_LEASE_S": 1.0,
        "ORDER_LOCK_TIMEOUT_MS": 4_000,
    }
    for name, value in overrides.items():
        monkeypatch.setattr(settings, name, value)
    monkeypatch.setattr(timezone, "now", world.clock.now)
    monkeypatch.setattr(payments.tasks, "payment_capture_enqueue", world.enqueue_capture)
    monkeypatch.setattr(payments.tasks, "payment_refund_enqueue", world.enqueue_refund)
    monkeypatch.setattr(
        payments.services, "payment_settle_charge", world.killable(payments.services.payment_settle_charge)
    )
    monkeypatch.setattr(
        payments.services, "payment_settle_declined", world.killable(payments.services.payment_settle_declined)
    )


def machine_for(world: World) -> type[RuleBasedStateMachine]:
    """The state machine class, bound to this test's world (Hypothesis builds one instance per example)."""

    class OrderLifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.world = world
            self.figures = world.figures
            world.broker.clear()
            world.kill_next_settle.clear()
            world.control(reset=True, outage=False, latency_ms=0, error_rate=0.0, decline_rate=0.0)
            provider_breaker().reset()
            self.customers = [UserFactory.create() for _ in range(2)]
            self.clients: list[APIClient] = [bearer_client(customer) for customer in self.customers]
            self.products = [ProductFactory.create(stock_on_hand=STOCK_PER_PRODUCT) for _ in range(2)]
            self.product_ids = [product.pk for product in self.products]
            # (customer index, key) -> (payload index, order id): what the shop accepted.
            self.accepted: dict[tuple[int, str], tuple[int, int]] = {}
            self.owners: dict[int, int] = {}  # order id -> customer index
            self.order_ids: list[int] = []
            self.steps = 0
            self.checked_steps = 0

        # --- helpers ------------------------------------------------------------------------------------------

        def step(self, name: str) -> None:
            self.steps += 1
            self.figures.rules[name] += 1

        def pick_order(self, index: int) -> int:
            return self.order_ids[index % len(self.order_ids)]

        def take(self, index: int, kind: str | None = None) -> Message | None:
            with self.world.lock:
                candidates = [m for m in self.world.broker if kind is None or m.kind == kind]
                if not candidates:
                    return None
                message = candidates[index % len(candidates)]
                self.world.broker.remove(message)
                return message

        def requeue(self, message: Message) -> None:
            """Celery's autoretry: the message comes back, until its retries run out (then it is lost)."""
            limit = CAPTURE_RETRIES if message.kind == CAPTURE else REFUND_RETRIES
            if message.retries < limit:
                with self.world.lock:
                    self.world.broker.append(Message(message.kind, message.order_id, message.retries + 1))
            else:
                self.figures.outcomes["retries_exhausted"] += 1

        def deliver(self, message: Message) -> str:
            """Run one delivery of a task's body, as a worker would. Returns what happened."""
            try:
                if message.kind == CAPTURE:
                    outcome = payment_capture(order_id=message.order_id)
                else:
                    outcome = payment_refund(order_id=message.order_id)
            except ProviderUnavailable:
                outcome = "no_answer"
                self.requeue(message)
            self.figures.outcomes[f"{message.kind}_{outcome}"] += 1
            return outcome

        def on_hand(self) -> list[int]:
            stock = dict(Product.objects.filter(pk__in=self.product_ids).values_list("pk", "stock_on_hand"))
            return [stock[pk] for pk in self.product_ids]

        # --- rules: customers -----------------------------------------------------------------------------------

        @initialize(request=ORDER_REQUESTS)
        def first_order(self, request: tuple[int, str, int]) -> None:
            self.place_order(*request)

        @initialize(request=ORDER_REQUESTS)
        def second_order(self, request: tuple[int, str, int]) -> None:
            self.place_order(*request)

        @rule(request=ORDER_REQUESTS)
        def customer_orders(self, request: tuple[int, str, int]) -> None:
            """POST /api/v1/orders/ with an Idempotency-Key: new, repeated, or reused for another request."""
            self.place_order(*request)

        def place_order(self, customer: int, key: str, payload: int) -> None:
            self.step("place_order")
            lines = PAYLOADS[payload]
            body = {
                "lines": [{"product_id": self.products[p].pk, "quantity": q} for p, q in lines],
                "shipping_address": dict(DEFAULT_ADDRESS),
                "note": "",
            }
            on_hand = self.on_hand()
            short = any(on_hand[p] < q for p, q in lines)
            response = self.clients[customer].post("/api/v1/orders/", body, format="json", HTTP_IDEMPOTENCY_KEY=key)
            earlier = self.accepted.get((customer, key))
            replayed = response.get("Idempotent-Replayed") == "true"
            if earlier is not None and earlier[0] == payload:
                # The same request again (whether or not its key record was purged): the same order, said so.
                assert (response.status_code, replayed) == (201, True), (response.status_code, response.content)
                assert response.json()["id"] == earlier[1], "a replay answered with another order"
                self.figures.outcomes["place_replayed"] += 1
            elif earlier is not None:
                assert response.status_code == 422, (response.status_code, response.content)
                assert response.json()["code"] == "idempotency_key_reused"
                self.figures.outcomes["place_key_reused_422"] += 1
            elif short:
                assert response.status_code == 409, (response.status_code, response.content)
                assert response.json()["code"] == "insufficient_stock"
                self.figures.outcomes["place_insufficient_stock"] += 1
            else:
                assert (response.status_code, replayed) == (201, False), (response.status_code, response.content)
                order_id = response.json()["id"]
                self.accepted[(customer, key)] = (payload, order_id)
                self.owners[order_id] = customer
                self.order_ids.append(order_id)
                self.figures.orders += 1
                self.figures.outcomes["place_created"] += 1

        @precondition(lambda self: self.order_ids)
        @rule(change=st.tuples(st.sampled_from(["cancel", "ship"]), st.integers(0, 20)))
        def order_changes(self, change: tuple[str, int]) -> None:
            """The customer cancels (POST .../cancel/), or the warehouse ships a paid order."""
            action, index = change
            self.step(action)
            order_id = self.pick_order(index)
            if action == "ship":
                order = Order.objects.get(pk=order_id)
                try:
                    order_fulfil(order=order)
                    self.figures.outcomes["ship_fulfilled"] += 1
                except ApplicationError as refused:
                    assert refused.code == "not_fulfillable" and order.status != OrderStatus.PAID, refused
                return
            response = self.clients[self.owners[order_id]].post(f"/api/v1/orders/{order_id}/cancel/")
            assert response.status_code in (200, 409), (response.status_code, response.content)
            if response.status_code == 409:
                assert response.json()["code"] == "not_cancellable", response.content
                status = Order.objects.values_list("status", flat=True).get(pk=order_id)
                assert status in {OrderStatus.FULFILLED, OrderStatus.PAYMENT_FAILED}, status
            self.figures.outcomes[f"cancel_{response.status_code}"] += 1

        # --- rules: the worker ----------------------------------------------------------------------------------

        @precondition(lambda self: self.order_ids)
        @rule(
            job=st.tuples(
                st.sampled_from(WORKER_ACTIONS),
                st.integers(0, 20),
                st.sampled_from(CARD_OUTCOMES),
                st.none() | DELIVERY_FAULTS,
            )
        )
        def broker_delivers(self, job: tuple[str, int, str | None, tuple[str, int, str] | None]) -> None:
            """One message from the broker (or, when it is empty, a stale duplicate of some order's capture):
            delivered; delivered to two workers at the same moment (real threads); delivered to a worker that
            dies after the provider answered and before the answer is recorded (the message comes back:
            acks_late, reject_on_worker_lost); or lost by the broker. The provider may have been asked to
            misbehave on its next calls first."""
            action, index, card, delivery = job
            if card is not None:
                self.ask_for_fault(card, 1, "charge")
            if delivery is not None:
                self.ask_for_fault(*delivery)
            self.step(f"worker_{action}")
            message = self.take(index) or Message(CAPTURE, self.pick_order(index))
            if action == "deliver":
                self.deliver(message)
            elif action == "deliver_twice_at_once":
                for outcome in run_concurrently(lambda _: self.deliver(message), 2):
                    outcome.unwrap()
            elif action == "kill_mid_task":
                self.world.kill_next_settle.set()
                try:
                    self.deliver(message)
                except WorkerKilled:
                    self.figures.outcomes["capture_worker_killed"] += 1
                    with self.world.lock:
                        self.world.broker.append(message)
                finally:
                    self.world.kill_next_settle.clear()
            # "lose": the message is gone; only the reconciliation job can find its order again.

        @rule(job=st.sampled_from(["reconcile_now", "reconcile_redrive", "reconcile_abandon", "purge_keys"]))
        def periodic_job(self, job: str) -> None:
            """Celery beat: the reconciliation job, run `later` after the orders' last attempt or placement (time
            moved by `now=`, not slept); or the hourly purge, a retention window later (every key record so far
            is gone; the orders stay)."""
            self.step(job)
            if job == "purge_keys":
                retention_s = settings.IDEMPOTENCY_KEY_RETENTION_HOURS * 3600 + 60
                idempotency_purge_expired(now=self.world.clock.advance(retention_s))
                return
            advance = ADVANCE[job.removeprefix("reconcile_")]()
            report = payment_reconcile(now=self.world.clock.advance(advance))
            for name, count in report.as_dict().items():
                if count:
                    self.figures.outcomes[f"reconcile_{name}"] += count

        @precondition(lambda self: self.order_ids)
        @rule(index=st.integers(0, 20), rival=st.sampled_from(["cancel", "reconcile_abandon"]))
        def capture_races(self, index: int, rival: str) -> None:
            """A capture and a cancel (or the abandoning reconciliation) at the same moment, in real threads.

            For the job, a day passes first (the order is old enough to abandon); then its capture, re-driven,
            and the job start together.
            """
            self.step(f"capture_races_{rival}")
            message = self.take(index, CAPTURE) or Message(CAPTURE, self.pick_order(index))
            if rival == "reconcile_abandon":
                self.world.clock.advance(ADVANCE["abandon"]())

            def racer(which: int) -> str:
                if which == 0:
                    return self.deliver(message)
                if rival == "cancel":
                    try:
                        return order_cancel(order=Order.objects.get(pk=message.order_id)).status
                    except ApplicationError as refused:  # payment_failed or fulfilled: not cancellable
                        assert refused.code == "not_cancellable", refused
                        return refused.code
                return str(payment_reconcile(now=timezone.now()).as_dict())

            for outcome in run_concurrently(racer, 2):
                outcome.unwrap()

        # --- rules: the provider --------------------------------------------------------------------------------

        @rule(mood=st.sampled_from(list(STANDING_MOODS)) | FAULTS)
        def provider_misbehaves(self, mood: str | tuple[str, int, str]) -> None:
            """The provider changes mood for good (down, declining every card, well again), or misbehaves on its
            next calls (the faults of payments/simulator.py)."""
            if isinstance(mood, str):
                self.step(f"provider_{mood}")
                self.world.control(**STANDING_MOODS[mood])
            else:
                self.ask_for_fault(*mood)

        def ask_for_fault(self, kind: str, calls: int, on: str) -> None:
            self.step("provider_fault")
            fault: dict[str, Any] = {"kind": kind, "calls": 1 if kind in SLOW_FAULTS else calls, "on": on}
            if kind in SLOW_FAULTS:
                fault["delay_ms"] = SLOW_FAULT_DELAY_MS
            self.world.control(faults=[fault])

        # --- what must hold -------------------------------------------------------------------------------------

        def ledger(self) -> dict[str, Any]:
            return self.world.stats()

        def rows(self) -> list[Row]:
            return [
                Row(*values)
                for values in Order.objects.filter(customer__in=self.customers)
                .order_by("pk")
                .values_list(
                    "pk",
                    "status",
                    "customer_id",
                    "idempotency_key",
                    "stock_released_at",
                    "payment__status",
                    "payment__idempotency_key",
                )
            ]

        @invariant()
        def everything_holds(self) -> None:
            self.check(final=False)
            self.checked_steps = self.steps

        def check(self, *, final: bool) -> None:
            stats = self.ledger()
            rows = self.rows()
            succeeded = {key for key, status in stats["charge_status_per_key"].items() if status == "succeeded"}
            refunds: dict[str, int] = stats["refunds_per_key"]
            twice = {key: times for key, times in stats["charges_per_key"].items() if times > 1}
            assert not twice, f"charged more than once: {twice}"

            for row in rows:
                order_id, status, payment_status, key = row.order_id, row.status, row.payment_status, row.payment_key
                assert payment_status is not None and key is not None, f"order {order_id} has no payment row"
                # Stock held forever: an order that can no longer be paid has given its units back.
                released = row.stock_released_at is not None
                assert released == (status in STATUSES_WITHOUT_STOCK), f"order {order_id} is {status}, {released=}"
                taken = key in succeeded
                if payment_status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
                    assert taken, f"payment of order {order_id} is {payment_status} without a successful charge"
                if status in (OrderStatus.PAID, OrderStatus.FULFILLED):
                    assert taken and payment_status == PaymentStatus.CAPTURED, (
                        f"order {order_id} is {status} without a successful charge (payment {payment_status})"
                    )
                if taken:
                    # Money taken is recorded, or not heard of yet (the answer was lost): never a failed payment.
                    assert payment_status != PaymentStatus.FAILED, f"order {order_id}: charged, payment failed"
                    assert status != OrderStatus.PAYMENT_FAILED, f"order {order_id}: charged, yet payment_failed"
                refunded = refunds.get(key, 0)
                assert refunded <= 1, f"order {order_id} refunded {refunded} times"
                if refunded:
                    assert status == OrderStatus.CANCELLED, f"order {order_id} is {status} but was refunded"
                if payment_status == PaymentStatus.REFUNDED:
                    assert refunded == 1, f"order {order_id}: payment refunded, provider refunds {refunded}"
                if final:
                    assert status != OrderStatus.PENDING_PAYMENT, f"order {order_id} still pending after the drain"
                    assert taken == (payment_status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED)), (
                        f"order {order_id}: charged {taken}, payment {payment_status}"
                    )
                    if status == OrderStatus.CANCELLED and taken:
                        assert refunded == 1, f"cancelled order {order_id} charged and refunded {refunded} times"
            keys_of_rows = {row.payment_key for row in rows}
            if final:
                assert succeeded <= keys_of_rows, f"charges for no order: {sorted(succeeded - keys_of_rows)}"

            self.check_stock()
            self.check_keys(rows)

        def check_stock(self) -> None:
            held = dict(
                OrderLine.objects.filter(product_id__in=self.product_ids, order__status__in=STATUSES_HOLDING_STOCK)
                .values("product_id")
                .annotate(units=Sum("quantity"))
                .values_list("product_id", "units")
            )
            for pk, received, on_hand in Product.objects.filter(pk__in=self.product_ids).values_list(
                "pk", "stock_received", "stock_on_hand"
            ):
                assert received == on_hand + held.get(pk, 0), (
                    f"product {pk}: received {received} != on hand {on_hand} + held by live orders {held.get(pk, 0)}"
                )

        def check_keys(self, rows: list[Row]) -> None:
            assert sorted(row.order_id for row in rows) == sorted(self.order_ids), "an order nobody accepted"
            by_key = Counter((row.customer_id, row.key) for row in rows)
            assert all(count == 1 for count in by_key.values()), f"two orders for one key: {by_key}"
            order_by_key = {(row.customer_id, row.key): row.order_id for row in rows}
            for (customer, key), (_, order_id) in self.accepted.items():
                found = order_by_key.get((self.customers[customer].pk, key))
                assert found == order_id, f"key {key} names order {found}, the shop answered {order_id}"

        # --- the end of a program ---------------------------------------------------------------------------

        def drain(self) -> None:
            """Faults off, every message delivered, reconciliation past the abandon age, until nothing moves."""
            self.world.control(outage=False, decline_rate=0.0, clear_faults=True)
            for _ in range(10):
                provider_breaker().reset()  # a circuit the faults opened would only defer the drain
                while self.world.broker:
                    message = self.world.broker.pop(0)
                    self.deliver(message)
                payment_reconcile(now=self.world.clock.advance(ADVANCE["abandon"]()))
                if not self.world.broker:
                    break

        def teardown(self) -> None:
            # A failing step is reported as it is; Hypothesis also ends a program early when it runs out of data
            # for it (that program is discarded). Either way the world is settled for the next program (the
            # reconciliation job works on every order in the database), but only whole programs are checked.
            if self.checked_steps != self.steps:
                with contextlib.suppress(Exception):
                    self.drain()
                return
            self.drain()
            self.check(final=True)
            # The production checker (manage.py check_invariants) agrees, over the whole database.
            failing = [f"{result.name}: {result.detail}" for result in check_all() if not result.ok]
            assert not failing, f"check_invariants: {failing}"
            stats = self.ledger()
            self.figures.faults_applied.update(stats["faults_applied"])
            self.figures.provider_calls += int(stats["requests"])
            self.figures.examples += 1
            self.figures.steps += self.steps

    return OrderLifecycle
