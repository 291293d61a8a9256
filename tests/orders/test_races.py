"""Orders under real concurrency: threads lined up on a barrier, each on its own connection through PgBouncer.

Every protected race has a twin (`test_twin_...`) that switches the protection off - no row lock, no
conditional update, no transaction, or the database constraint dropped - and asserts that the race then
really happens. That is how we know each protected test is able to fail.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import psycopg.errors
import pytest
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from zeal import zeal_ignore

import payments.services
from accounts.models import User
from idempotency.models import IdempotencyKey, IdempotencyKeyStatus
from orders.models import STATUSES_HOLDING_STOCK, STATUSES_WITHOUT_STOCK, Order, OrderLine, OrderStatus
from orders.ports import payment_port
from orders.services import order_cancel
from payments import simulator
from payments.breaker import provider_breaker
from payments.client import provider_charge
from payments.models import Payment, PaymentStatus
from payments.services import payment_capture, payment_idempotency_key, payment_refund
from payments.tasks import payment_capture_task
from shop.models import Product
from tests.concurrency import BARRIER_TIMEOUT_S, constraint_switched_off, raw_connection, run_concurrently
from tests.conftest import bearer_client, order_payload
from tests.factories import UserFactory
from tests.orders.support import place, stock_of

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _rereads_are_deliberate() -> Iterator[None]:
    """Race tests read the same rows before and after the race on purpose; the API calls stay N+1-checked."""
    with zeal_ignore():
        yield


@pytest.fixture
def enqueued(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[int]]:
    """Record the payment tasks sent after commit (capture after placing, refund after cancelling a paid order)."""
    sent: dict[str, list[int]] = {"capture": [], "refund": []}
    monkeypatch.setattr(payment_port, "capture_enqueue", sent["capture"].append)
    monkeypatch.setattr(payment_port, "refund_enqueue", sent["refund"].append)
    return sent


@pytest.fixture
def provider(settings: Any) -> Iterator[simulator.ProviderState]:
    """The payment provider simulator, for real over HTTP, on a free port for this test only."""
    server = simulator.serve("127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, name="provider", daemon=True)
    thread.start()
    settings.PAYMENT_PROVIDER_URL = f"http://127.0.0.1:{server.server_address[1]}"
    simulator.STATE.control({"reset": True, "latency_ms": 0, "error_rate": 0, "decline_rate": 0, "outage": False})
    provider_breaker().reset()  # a circuit another test opened must not refuse this test's charges
    try:
        yield simulator.STATE
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def stock_release_check_switched_off() -> Any:
    """Naive code below writes statuses without the stock-release marker the database now insists on."""

    def make_rows_consistent() -> None:
        Order.objects.filter(status__in=STATUSES_WITHOUT_STOCK, stock_released_at=None).update(
            stock_released_at=timezone.now()
        )
        Order.objects.filter(status__in=STATUSES_HOLDING_STOCK).update(stock_released_at=None)

    return constraint_switched_off(Order, "order_stock_released_when_closed", clean_up=make_rows_consistent)


def cause_of(outcome_error: BaseException | None) -> BaseException | None:
    return outcome_error.__cause__ if outcome_error is not None else None


# --- Two buyers, one unit: no overselling --------------------------------------------------------------------


@pytest.mark.parametrize("protection", ["row lock and check constraint", "row lock alone"])
def test_fifty_buyers_for_the_last_ten_units_exactly_ten_win(
    product_factory: Any, settings: Any, enqueued: dict[str, list[int]], protection: str
) -> None:
    # Generous, but below the role's statement_timeout (5 s), so a slow box answers busy rather than 503.
    settings.ORDER_LOCK_TIMEOUT_MS = 4_000
    product = product_factory(stock_on_hand=10)
    clients = [bearer_client(buyer) for buyer in UserFactory.create_batch(50)]

    def buy(index: int) -> Any:
        return clients[index].post(
            "/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY=f"buy-{index}"
        )

    if protection == "row lock alone":
        # The code path must hold on its own, without the database's CHECK (stock_on_hand >= 0) behind it.
        with constraint_switched_off(
            Product,
            "product_stock_on_hand_not_negative",
            clean_up=lambda: Product.objects.filter(stock_on_hand__lt=0).update(stock_on_hand=0),
        ):
            outcomes = run_concurrently(buy, 50)
            final_stock = stock_of(product)
    else:
        outcomes = run_concurrently(buy, 50)
        final_stock = stock_of(product)
    replies = [outcome.unwrap() for outcome in outcomes]  # a 500 would raise here

    statuses = Counter(reply.status_code for reply in replies)
    assert statuses == {201: 10, 409: 40}, statuses
    for reply in replies:
        if reply.status_code == 409:
            # Normally insufficient_stock; on a very slow box a buyer may have waited too long: busy, retry later.
            assert reply.json()["code"] in {"insufficient_stock", "busy"}
            if reply.json()["code"] == "busy":
                assert int(reply["Retry-After"]) >= 1
    assert final_stock == 0
    assert Order.objects.count() == 10
    assert sum(OrderLine.objects.values_list("quantity", flat=True)) == 10
    assert Payment.objects.count() == 10
    assert sorted(enqueued["capture"]) == sorted(Order.objects.values_list("pk", flat=True))
    # Refused buyers wrote nothing, not even a key: they may retry with the same key later.
    assert IdempotencyKey.objects.filter(status=IdempotencyKeyStatus.COMPLETED).count() == 10
    assert not IdempotencyKey.objects.filter(status=IdempotencyKeyStatus.IN_FLIGHT).exists()


def _naive_buy_one(product: Product, everyone_read: threading.Barrier) -> str:
    """Read the stock, then write it: no row lock, no re-check. Every racer reads before anyone writes."""
    on_shelf = stock_of(product)
    if on_shelf < 1:
        return "refused"
    everyone_read.wait(timeout=BARRIER_TIMEOUT_S)
    Product.objects.filter(pk=product.pk).update(stock_on_hand=F("stock_on_hand") - 1)
    return "sold"


def test_twin_without_lock_and_without_check_constraint_fifty_buyers_oversell(product_factory: Any) -> None:
    product = product_factory(stock_on_hand=10)
    everyone_read = threading.Barrier(50)

    def put_stock_back_in_range() -> None:
        Product.objects.filter(stock_on_hand__lt=0).update(stock_on_hand=0)

    with constraint_switched_off(Product, "product_stock_on_hand_not_negative", clean_up=put_stock_back_in_range):
        outcomes = [o.unwrap() for o in run_concurrently(lambda i: _naive_buy_one(product, everyone_read), 50)]
        final_stock = stock_of(product)

    # The race happened: 50 units sold from a shelf of 10; the stock went to -40.
    assert outcomes.count("sold") == 50
    assert final_stock == -40


def test_twin_without_lock_the_check_constraint_alone_still_refuses_to_go_negative(product_factory: Any) -> None:
    """Half the protection: naive code, but the database's CHECK (stock_on_hand >= 0) still holds the line.

    It never oversells, but the losers get an IntegrityError - a 500 in naive code. The lock and the re-check
    in do_order_create turn that into a clean 409 insufficient_stock.
    """
    product = product_factory(stock_on_hand=10)
    everyone_read = threading.Barrier(50)

    outcomes = run_concurrently(lambda i: _naive_buy_one(product, everyone_read), 50)

    sold = [o for o in outcomes if o.value == "sold"]
    refused_by_database = [o for o in outcomes if isinstance(o.error, IntegrityError)]
    assert len(sold) == 10
    assert len(refused_by_database) == 40
    assert stock_of(product) == 0


# --- Mixed carts in opposite orders: no deadlock --------------------------------------------------------------


def test_mixed_carts_racing_in_opposite_orders_never_deadlock(
    product_factory: Any, settings: Any, enqueued: dict[str, list[int]]
) -> None:
    settings.ORDER_LOCK_TIMEOUT_MS = 4_000  # below the role's statement_timeout; a deadlock would also be busy
    tea, coffee, cocoa = (product_factory(stock_on_hand=100) for _ in range(3))
    racers = 12
    clients = [bearer_client(buyer) for buyer in UserFactory.create_batch(racers)]

    def buy(index: int) -> Any:
        cart = [tea, coffee, cocoa] if index % 2 == 0 else [cocoa, coffee, tea]
        payload = order_payload(*[(product.pk, 1) for product in cart])
        return clients[index].post("/api/v1/orders/", payload, format="json", HTTP_IDEMPOTENCY_KEY=f"cart-{index}")

    replies = [outcome.unwrap() for outcome in run_concurrently(buy, racers)]  # a 500 would raise here

    assert [reply.status_code for reply in replies] == [201] * racers
    assert [stock_of(product) for product in (tea, coffee, cocoa)] == [100 - racers] * 3
    assert OrderLine.objects.count() == 3 * racers


def test_twin_locking_in_cart_order_deadlocks(product_factory: Any) -> None:
    """Protection off: each cart locks its rows in the order the customer listed them."""
    tea, coffee = product_factory(stock_on_hand=100), product_factory(stock_on_hand=100)
    both_hold_one = threading.Barrier(2)

    def naive_lock_in_cart_order(index: int) -> str:
        cart = [tea, coffee] if index == 0 else [coffee, tea]
        with transaction.atomic():
            for position, product in enumerate(cart):
                list(Product.objects.select_for_update().filter(pk=product.pk))
                if position == 0:
                    both_hold_one.wait(timeout=BARRIER_TIMEOUT_S)
            return "locked both"

    outcomes = run_concurrently(naive_lock_in_cart_order, 2)

    # The race happened: each held the row the other wanted; PostgreSQL killed one of them.
    deadlocked = [o for o in outcomes if isinstance(cause_of(o.error), psycopg.errors.DeadlockDetected)]
    assert len(deadlocked) == 1
    assert [o.value for o in outcomes if o.error is None] == ["locked both"]


# --- Lock contention that times out: 409 busy, never 500 -----------------------------------------------------


def test_placement_waiting_too_long_for_a_stock_lock_is_409_busy_and_writes_nothing(
    alice: User, product_factory: Any, settings: Any, enqueued: dict[str, list[int]]
) -> None:
    settings.ORDER_LOCK_TIMEOUT_MS = 100
    product = product_factory(stock_on_hand=5)
    client = bearer_client(alice)
    with raw_connection() as holder:
        # Another transaction (a slow admin edit, a stuck worker) holds the stock row far past the timeout.
        holder.execute(f"SELECT id FROM {Product._meta.db_table} WHERE id = %s FOR UPDATE", [product.pk])
        busy = client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="b")
        holder.rollback()

    assert busy.status_code == 409
    assert busy["Content-Type"] == "application/problem+json"
    assert busy.json()["code"] == "busy"
    assert int(busy["Retry-After"]) >= 1
    assert Order.objects.count() == Payment.objects.count() == IdempotencyKey.objects.count() == 0
    assert stock_of(product) == 5
    assert enqueued["capture"] == []
    # The key was released with the rollback, so the client's retry with the same key simply works.
    retried = client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="b")
    assert retried.status_code == 201
    assert stock_of(product) == 4


@pytest.mark.parametrize("action", ["cancel", "edit"])
def test_cancel_or_edit_waiting_too_long_for_the_order_lock_is_409_busy(
    alice: User, product_factory: Any, settings: Any, enqueued: dict[str, list[int]], action: str
) -> None:
    product = product_factory(stock_on_hand=5)
    order = place(alice, (product, 2), key="k")
    settings.ORDER_LOCK_TIMEOUT_MS = 100
    client = bearer_client(alice)
    url = f"/api/v1/orders/{order.pk}/"
    with raw_connection() as holder:
        holder.execute(f"SELECT id FROM {Order._meta.db_table} WHERE id = %s FOR UPDATE", [order.pk])
        if action == "cancel":
            busy = client.post(f"{url}cancel/")
        else:
            busy = client.patch(url, {"note": "gift wrap"}, format="json", HTTP_IF_MATCH='"1"')
        holder.rollback()

    assert busy.status_code == 409
    assert busy.json()["code"] == "busy"
    assert int(busy["Retry-After"]) >= 1
    unchanged = Order.objects.get(pk=order.pk)
    assert (unchanged.status, unchanged.version, unchanged.note) == (OrderStatus.PENDING_PAYMENT, 1, "")
    assert stock_of(product) == 3


# --- Optimistic locking: two edits from the same version -----------------------------------------------------


def test_two_edits_from_the_same_version_one_200_one_412(
    alice: User, product_factory: Any, enqueued: dict[str, list[int]]
) -> None:
    order = place(alice, (product_factory(stock_on_hand=5), 1), key="k")
    clients = [bearer_client(alice) for _ in range(2)]
    url = f"/api/v1/orders/{order.pk}/"

    def edit(index: int) -> Any:
        return clients[index].patch(url, {"note": f"edit {index}"}, format="json", HTTP_IF_MATCH='"1"')

    replies = [outcome.unwrap() for outcome in run_concurrently(edit, 2)]

    assert sorted(reply.status_code for reply in replies) == [200, 412]
    winner = next(reply for reply in replies if reply.status_code == 200)
    loser = next(reply for reply in replies if reply.status_code == 412)
    assert loser.json()["code"] == "precondition_failed"
    assert loser.json()["current_version"] == 2
    assert winner["ETag"] == '"2"'
    saved = Order.objects.get(pk=order.pk)
    assert (saved.note, saved.version) == (winner.json()["note"], 2)


def test_twin_read_modify_write_edits_lose_an_update(
    alice: User, product_factory: Any, enqueued: dict[str, list[int]]
) -> None:
    """Protection off: the version is checked in Python after a read, not in the UPDATE's WHERE clause."""
    order = place(alice, (product_factory(stock_on_hand=5), 1), key="k")
    both_read = threading.Barrier(2)

    def naive_edit(index: int) -> str:
        current = Order.objects.get(pk=order.pk)
        if current.version != 1:
            return "stale"
        both_read.wait(timeout=BARRIER_TIMEOUT_S)
        current.note = f"edit {index}"
        current.version += 1
        current.save(update_fields=["note", "version"])
        return "saved"

    outcomes = [outcome.unwrap() for outcome in run_concurrently(naive_edit, 2)]

    # The race happened: both edits "succeeded", but only one of them is in the database.
    assert outcomes == ["saved", "saved"]
    saved = Order.objects.get(pk=order.pk)
    assert saved.version == 2
    assert saved.note in {"edit 0", "edit 1"}


# --- Cancel: exactly once, and against a racing payment capture ----------------------------------------------


def test_concurrent_cancels_return_the_stock_exactly_once(
    alice: User, product_factory: Any, enqueued: dict[str, list[int]]
) -> None:
    product = product_factory(stock_on_hand=10)
    order = place(alice, (product, 3), key="k")

    outcomes = run_concurrently(lambda index: order_cancel(order=order), 5)

    assert [outcome.unwrap().status for outcome in outcomes] == [OrderStatus.CANCELLED] * 5
    assert stock_of(product) == 10
    assert Order.objects.get(pk=order.pk).version == 2


def test_twin_cancel_without_row_lock_returns_the_stock_several_times(
    alice: User, product_factory: Any, enqueued: dict[str, list[int]]
) -> None:
    product = product_factory(stock_on_hand=10)
    order = place(alice, (product, 3), key="k")
    all_read = threading.Barrier(5)

    def naive_cancel(index: int) -> str:
        current = Order.objects.get(pk=order.pk)  # no select_for_update, no guarded UPDATE
        if current.status == OrderStatus.CANCELLED:
            return "already cancelled"
        all_read.wait(timeout=BARRIER_TIMEOUT_S)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
        Product.objects.filter(pk=product.pk).update(stock_on_hand=F("stock_on_hand") + 3)
        return "cancelled"

    with (
        stock_release_check_switched_off(),
        constraint_switched_off(
            Product,
            "product_stock_within_received",
            clean_up=lambda: Product.objects.filter(pk=product.pk).update(stock_on_hand=F("stock_received")),
        ),
    ):
        outcomes = [outcome.unwrap() for outcome in run_concurrently(naive_cancel, 5)]
        final_stock = stock_of(product)

    # The race happened: 3 units sold, 15 came back; the shelf holds stock that was never received.
    assert outcomes == ["cancelled"] * 5
    assert final_stock == 7 + 5 * 3


@pytest.mark.parametrize(
    ("provider_latency_ms", "cancel_after_ms"),
    [
        (0, 0),  # usually: cancel locks first, the capture sees a cancelled order and charges nothing
        (150, 50),  # cancel lands while the charge is at the provider: the capture must refund
        (0, 300),  # capture commits first: cancelling a paid order refunds it
    ],
)
def test_cancel_racing_payment_capture_ends_consistent(
    alice: User,
    product_factory: Any,
    enqueued: dict[str, list[int]],
    provider: simulator.ProviderState,
    provider_latency_ms: int,
    cancel_after_ms: int,
) -> None:
    product = product_factory(stock_on_hand=10)
    order = place(alice, (product, 2), key="k")
    provider.control({"latency_ms": provider_latency_ms})

    def capture_or_cancel(index: int) -> str:
        if index == 0:
            return payment_capture(order_id=order.pk)
        time.sleep(cancel_after_ms / 1000)  # varies the interleaving; nothing asserts on time
        return order_cancel(order=order).status

    capture_result, cancel_result = (outcome.unwrap() for outcome in run_concurrently(capture_or_cancel, 2))
    # What the refund worker would do with the refunds the cancel enqueued after commit.
    refund_results = [payment_refund(order_id=order_id) for order_id in enqueued["refund"]]

    final = Order.objects.get(pk=order.pk)
    payment = Payment.objects.get(order=order)
    key = payment_idempotency_key(order)
    charged = key in provider.charges_by_key
    refunded = f"{key}-refund" in provider.refunds_by_key
    assert cancel_result == OrderStatus.CANCELLED
    assert final.status == OrderStatus.CANCELLED
    # Stock returned exactly once.
    assert stock_of(product) == 10
    # Charged at most once, and never charged-and-kept for a cancelled order.
    assert provider.charges_by_key.get(key, {}).get("times_charged", 0) <= 1
    assert refunded == charged, (capture_result, refund_results)
    assert payment.status == (PaymentStatus.REFUNDED if charged else PaymentStatus.PENDING)
    # The order moved at most twice (paid, then cancelled), each move a guarded transition.
    assert final.version in {2, 3}


def test_twin_unguarded_capture_and_cancel_leave_a_paid_order_with_its_stock_back_on_the_shelf(
    alice: User, product_factory: Any, enqueued: dict[str, list[int]], provider: simulator.ProviderState
) -> None:
    product = product_factory(stock_on_hand=10)
    order = place(alice, (product, 2), key="k")
    both_read, cancel_done = threading.Barrier(2), threading.Barrier(2)

    def naive_capture() -> str:
        current = Order.objects.get(pk=order.pk)
        if current.status != OrderStatus.PENDING_PAYMENT:
            return "skipped"
        both_read.wait(timeout=BARRIER_TIMEOUT_S)
        provider_charge(
            idempotency_key=payment_idempotency_key(order), amount=order.total, currency="EUR", reference="x"
        )
        cancel_done.wait(timeout=BARRIER_TIMEOUT_S)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID)  # unconditional: the bug
        return "captured"

    def naive_cancel() -> str:
        current = Order.objects.get(pk=order.pk)
        if current.status == OrderStatus.CANCELLED:
            return "already cancelled"
        both_read.wait(timeout=BARRIER_TIMEOUT_S)
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.CANCELLED)
        Product.objects.filter(pk=product.pk).update(stock_on_hand=F("stock_on_hand") + 2)
        cancel_done.wait(timeout=BARRIER_TIMEOUT_S)
        return "cancelled"

    with stock_release_check_switched_off():
        outcomes = run_concurrently(lambda index: naive_capture() if index == 0 else naive_cancel(), 2)
        final_status = Order.objects.get(pk=order.pk).status

    # The race happened: the customer was told "cancelled" and charged; the goods are back on the shelf anyway.
    assert [outcome.unwrap() for outcome in outcomes] == ["captured", "cancelled"]
    assert final_status == OrderStatus.PAID
    assert stock_of(product) == 10
    assert provider.charges_by_key[payment_idempotency_key(order)]["times_charged"] == 1
    assert not provider.refunds_by_key


# --- A cancel between the capture's read and its stamp --------------------------------------------------------


class CancelBeforeTheStamp:
    """`payments.services.timezone`, with one change: its first `now()`, which builds the capture's stamp right
    before that UPDATE is sent, first lets the customer cancel the order, committed on another connection. So the
    cancel lands exactly between the capture's read (pending) and its stamp, every time."""

    def __init__(self, order: Order) -> None:
        self.order = order
        self.cancelled: list[str] = []

    def now(self) -> Any:
        if not self.cancelled:
            (outcome,) = run_concurrently(lambda index: order_cancel(order=self.order).status, 1)
            self.cancelled.append(outcome.unwrap())
        return timezone.now()


@pytest.fixture
def cancel_before_the_stamp(
    alice: User, product_factory: Any, enqueued: dict[str, list[int]], monkeypatch: pytest.MonkeyPatch
) -> CancelBeforeTheStamp:
    """Alice's order of 2 of a product with 10 on the shelf, and the capture's clock that cancels it in the window."""
    order = place(alice, (product_factory(stock_on_hand=10), 2), key="k")
    clock = CancelBeforeTheStamp(order)
    monkeypatch.setattr(payments.services, "timezone", clock)
    return clock


def test_a_cancel_between_the_capture_read_and_its_stamp_charges_nothing(
    cancel_before_the_stamp: CancelBeforeTheStamp,
    enqueued: dict[str, list[int]],
    provider: simulator.ProviderState,
) -> None:
    clock = cancel_before_the_stamp
    order = clock.order

    outcome = payment_capture(order_id=order.pk)

    assert clock.cancelled == [OrderStatus.CANCELLED]  # the cancel did land inside the window
    # The stamp is conditional (still pending, order still waiting): it matched nothing, so nothing was charged.
    assert outcome == "skipped"
    assert payment_idempotency_key(order) not in provider.charges_by_key
    assert Payment.objects.get(order=order).attempts == 0
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
    assert OrderLine.objects.get(order=order).product.stock_on_hand == 10  # the 2 units back on the shelf
    assert enqueued["refund"] == []  # nothing to give back


def test_twin_an_unconditional_stamp_charges_the_order_the_customer_just_cancelled(
    cancel_before_the_stamp: CancelBeforeTheStamp, provider: simulator.ProviderState
) -> None:
    clock = cancel_before_the_stamp
    order = clock.order

    def naive_capture(order_id: int) -> str:
        """payment_capture's read, stamp and charge, with the stamp's conditions left out."""
        payment = Payment.objects.select_related("order").get(order_id=order_id)
        if payment.order.status != OrderStatus.PENDING_PAYMENT or payment.status != PaymentStatus.PENDING:
            return "skipped"
        # Unconditional: the bug.
        Payment.objects.filter(pk=payment.pk).update(
            attempts=F("attempts") + 1, updated_at=payments.services.timezone.now()
        )
        provider_charge(
            idempotency_key=payment.idempotency_key, amount=payment.amount, currency=payment.currency, reference="x"
        )
        return "charged"

    outcome = naive_capture(order.pk)

    # The race happened: the customer cancelled, and was charged all the same (a refund is now owed).
    assert clock.cancelled == [OrderStatus.CANCELLED]
    assert outcome == "charged"
    assert provider.charges_by_key[payment_idempotency_key(order)]["times_charged"] == 1
    assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED


# --- The payment capture task delivered twice ----------------------------------------------------------------


def test_capture_task_delivered_twice_at_once_charges_once_and_moves_the_order_once(
    alice: User, product_factory: Any, enqueued: dict[str, list[int]], provider: simulator.ProviderState
) -> None:
    order = place(alice, (product_factory(stock_on_hand=10, price=Decimal("12.50")), 2), key="k")
    provider.control({"latency_ms": 150})  # both deliveries are at the provider at the same time

    outcomes = run_concurrently(lambda index: payment_capture_task.apply(args=(order.pk,)).get(), 2)
    redelivered_later = payment_capture_task.apply(args=(order.pk,)).get()

    results = sorted(str(outcome.unwrap()) for outcome in outcomes)
    # The twin either saw the settled order before calling the provider (skipped), or got the same charge
    # back from the provider (same key) and found the order already paid (already_captured).
    assert results in (["already_captured", "captured"], ["captured", "skipped"])
    assert redelivered_later == "skipped"
    key = payment_idempotency_key(order)
    assert provider.charges_by_key[key]["times_charged"] == 1
    assert len(provider.charges_by_id) == 1
    assert not provider.refunds_by_key
    final = Order.objects.get(pk=order.pk)
    assert (final.status, final.version) == (OrderStatus.PAID, 2)
    payment = Payment.objects.get(order=order)
    assert payment.status == PaymentStatus.CAPTURED
    assert payment.provider_reference == provider.charges_by_key[key]["id"]


def test_twin_capture_without_idempotency_key_or_guard_charges_twice(
    alice: User, product_factory: Any, enqueued: dict[str, list[int]], provider: simulator.ProviderState
) -> None:
    order = place(alice, (product_factory(stock_on_hand=10), 2), key="k")
    both_read = threading.Barrier(2)

    def naive_capture(index: int) -> str:
        current = Order.objects.get(pk=order.pk)
        if current.status != OrderStatus.PENDING_PAYMENT:
            return "skipped"
        both_read.wait(timeout=BARRIER_TIMEOUT_S)
        # The bug: a fresh provider key per attempt, and an unconditional status write.
        provider_charge(
            idempotency_key=f"attempt-{index}", amount=order.total, currency="EUR", reference=order.number or ""
        )
        Order.objects.filter(pk=order.pk).update(status=OrderStatus.PAID, version=F("version") + 1)
        return "captured"

    outcomes = [outcome.unwrap() for outcome in run_concurrently(naive_capture, 2)]

    # The race happened: one order, two charges, and the order "moved" twice.
    assert outcomes == ["captured", "captured"]
    assert [charge["reference"] for charge in provider.charges_by_id.values()] == [order.number] * 2
    assert Order.objects.get(pk=order.pk).version == 3


# --- Half-finished writes: a failure after the order row leaves nothing behind -------------------------------


@pytest.mark.parametrize("failing_step", ["order lines", "payment row"])
def test_failure_after_the_order_row_is_written_leaves_zero_rows(
    alice: User,
    product_factory: Any,
    enqueued: dict[str, list[int]],
    monkeypatch: pytest.MonkeyPatch,
    failing_step: str,
) -> None:
    product = product_factory(stock_on_hand=5)
    fault = {"armed": True}
    bulk_create_lines = OrderLine.objects.bulk_create
    record_payment = payments.services.payment_record_for_order

    def lines_then_crash(*args: Any, **kwargs: Any) -> Any:
        assert Order.objects.exists(), "the fault must strike after the order row is written"
        if fault["armed"]:
            raise RuntimeError("injected: the process died while writing the order lines")
        return bulk_create_lines(*args, **kwargs)

    def payment_then_crash(*, order: Order) -> Payment:
        assert OrderLine.objects.filter(order=order).exists() and stock_of(product) == 4
        if fault["armed"]:
            raise RuntimeError("injected: the process died while writing the payment row")
        return record_payment(order=order)

    if failing_step == "order lines":
        monkeypatch.setattr(OrderLine.objects, "bulk_create", lines_then_crash)
    else:
        monkeypatch.setattr(payment_port, "record_for_order", payment_then_crash)
    client = bearer_client(alice)
    client.raise_request_exception = False

    crashed = client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert crashed.status_code == 500
    assert Order.objects.count() == 0
    assert OrderLine.objects.count() == 0
    assert Payment.objects.count() == 0
    assert IdempotencyKey.objects.count() == 0
    assert stock_of(product) == 5
    assert enqueued["capture"] == []
    # Once the fault is gone, the client's retry with the same key places the order normally.
    fault["armed"] = False
    retried = client.post("/api/v1/orders/", order_payload((product.pk, 1)), format="json", HTTP_IDEMPOTENCY_KEY="k")
    assert retried.status_code == 201
    assert (Order.objects.count(), OrderLine.objects.count(), Payment.objects.count()) == (1, 1, 1)


def test_twin_without_a_transaction_a_failure_leaves_an_orphan_order(alice: User, product_factory: Any) -> None:
    product = product_factory(stock_on_hand=5)

    def naive_place() -> None:
        # Autocommit: each statement commits on its own, so the order row is permanent before the lines exist.
        Order.objects.create(
            customer=alice,
            total=product.price,
            idempotency_key="k",
            shipping_name="A. Buyer",
            shipping_line1="1 Main St",
            shipping_city="Springfield",
            shipping_postal_code="12345",
            shipping_country="DE",
        )
        Product.objects.filter(pk=product.pk).update(stock_on_hand=F("stock_on_hand") - 1)
        raise RuntimeError("injected: the process died while writing the order lines")

    with pytest.raises(RuntimeError):
        naive_place()

    # The failure happened halfway: an order with no lines and no payment, and a unit gone from the shelf.
    assert Order.objects.count() == 1
    assert OrderLine.objects.count() == Payment.objects.count() == 0
    assert stock_of(product) == 4
