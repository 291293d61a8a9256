"""Placing an order: the one use case behind the API (orders/apis.py) and the web checkout (cart/services.py).

`order_placement` is the whole protocol, in the order a newcomer should read it:
1. a cheap read answers the common retry with the order its key already placed (`order_for_key`);
2. one durable transaction with bounded lock waits (`locked_transaction`, core/locking.py) runs the caller's
   `write`, which ends in `do_order_create`: lines checked, stock locked and re-checked, order, lines, stock,
   payment row and confirmation mail written together;
3. the capture task is enqueued after commit (`enqueue_payment_after_commit`);
4. what the database refused becomes an answer: the unique (customer, idempotency_key) constraint lands a
   racing twin on the winner's order; the CHECK (stock_on_hand >= 0) becomes 409 insufficient_stock, never 500.
`order_place` (the API, services, the workshop) and `cart_checkout` (the web) differ only in their `write`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal

import structlog
from django.conf import settings
from django.db import IntegrityError, connection, transaction

from accounts.models import User
from core.errors import ApplicationError, InsufficientStock
from core.locking import locked_transaction, set_lock_timeout
from core.metrics import record_idempotency_conflict, record_stock_conflict
from idempotency.services import IdempotencyKeyReused, request_fingerprint
from mail.models import MailEvent
from mail.services import order_mail_enqueue
from orders.models import Order, OrderLine
from orders.ports import payment_port
from orders.services import LineRequest, ShippingAddress, route_to_centre
from shop.stock import is_stock_violation, stock_check_available, stock_lock_for_sale, stock_take

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class OrderPlacement:
    order: Order
    created: bool


class InvalidOrder(ApplicationError):
    code = "invalid"
    status = 400
    title = "Invalid order."


def check_order_lines(lines: Sequence[LineRequest]) -> list[LineRequest]:
    """Validate line shape and caps before any product row is locked; collect every problem, raise once."""
    errors: dict[str, list[str]] = {}
    if not lines:
        errors["lines"] = ["An order needs at least one line."]
    if len(lines) > settings.ORDER_MAX_LINES:
        errors["lines"] = [f"An order has at most {settings.ORDER_MAX_LINES} lines."]
    merged: dict[int, int] = {}
    for index, line in enumerate(lines):
        if not 1 <= line.quantity <= settings.ORDER_MAX_QUANTITY_PER_LINE:
            errors[f"lines[{index}].quantity"] = [
                f"Quantity must be between 1 and {settings.ORDER_MAX_QUANTITY_PER_LINE}."
            ]
        merged[line.product_id] = merged.get(line.product_id, 0) + line.quantity
    over_cap = [pid for pid, qty in merged.items() if qty > settings.ORDER_MAX_QUANTITY_PER_LINE]
    if over_cap:
        # Cap bypass: two lines of the same product are merged, and the merged quantity obeys the same cap.
        errors["lines"] = [
            f"Product {pid}: at most {settings.ORDER_MAX_QUANTITY_PER_LINE} units per order." for pid in over_cap
        ]
    if errors:
        raise InvalidOrder("The order has invalid lines; see errors.", extra={"errors": errors})
    return [LineRequest(product_id=pid, quantity=qty) for pid, qty in merged.items()]


def do_order_create(
    *,
    customer: User,
    lines: Sequence[LineRequest],
    shipping_address: ShippingAddress,
    note: str,
    idempotency_key: str,
    fingerprint: str,
) -> Order:
    """Check the lines, lock stock, re-check it, write the order and its lines, take the stock.

    Must be called inside the caller's transaction (`order_placement` opens it); every placement passes here
    exactly once, so what an order must satisfy is checked here, whoever the caller is.
    """
    assert connection.in_atomic_block, "do_order_create must run inside the caller's transaction"
    # Cap bypass: the web checkout's lines (read from the cart under its lock) obey the same caps as the API's.
    lines = check_order_lines(lines)
    set_lock_timeout()
    wanted = {line.product_id: line.quantity for line in lines}
    products = stock_lock_for_sale(wanted)
    unknown = [pid for pid in sorted(wanted) if pid not in products or not products[pid].is_active]
    if unknown:
        raise InvalidOrder(
            "Some products do not exist or are no longer sold.",
            code="unknown_product",
            extra={
                "errors": {"lines": [f"Unknown product {pid}." for pid in unknown]},
                "product_ids": unknown,
            },
        )
    stock_check_available(locked=products, wanted=wanted)
    if any(product.currency != settings.SHOP_CURRENCY for product in products.values()):
        raise InvalidOrder("All products in one order must share the shop currency.", code="mixed_currency")

    order_lines = [
        OrderLine(
            product_id=line.product_id,
            sku=products[line.product_id].sku,
            name=products[line.product_id].name,
            unit_price=products[line.product_id].price,
            quantity=line.quantity,
            line_total=products[line.product_id].price * line.quantity,
        )
        for line in sorted(lines, key=lambda line: line.product_id)
    ]
    order = Order.objects.create(
        customer=customer,
        fulfilment_centre=route_to_centre(shipping_address.country),
        currency=settings.SHOP_CURRENCY,
        total=sum((line.line_total for line in order_lines), Decimal("0.00")),
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        **shipping_address.as_order_fields(),
        note=note,
    )
    order.number = f"SO-{order.pk:06d}"
    Order.objects.filter(pk=order.pk).update(number=order.number)
    for order_line in order_lines:
        order_line.order = order
    OrderLine.objects.bulk_create(order_lines)
    stock_take(wanted)

    # Lost payment work: the payment row is written in this transaction; the task is only a nudge.
    payment_port.record_for_order(order=order)
    # Confirmation sent twice or for a rolled-back order: the outbox row commits or rolls back with the order,
    # here where every placement (the API's order_place, the web's cart_checkout) passes exactly once.
    order_mail_enqueue(order=order, event=MailEvent.ORDER_PLACED)
    return order


def _violated_constraint(error: IntegrityError) -> str | None:
    diag = getattr(error.__cause__, "diag", None)
    name: str | None = getattr(diag, "constraint_name", None)
    return name


def is_idempotency_violation(error: IntegrityError) -> bool:
    """True when the unique (customer, idempotency_key) constraint refused a second order for one key."""
    return _violated_constraint(error) == "order_one_per_idempotency_key"


def order_request_fingerprint(*, lines: Sequence[LineRequest], shipping_address: ShippingAddress, note: str) -> str:
    """The fingerprint of an order request made without an HTTP payload of its own (a direct service call)."""
    payload = {
        "lines": sorted([line.product_id, line.quantity] for line in lines),
        "shipping_address": {**shipping_address.__dict__, "country": shipping_address.country.upper()},
        "note": note,
    }
    # The path names where order_place lived when the first orders were fingerprinted; orders store this value,
    # so it stays as it was for their repeats to keep matching.
    return request_fingerprint(method="CALL", path="orders.services.order_place", payload=payload)


def order_for_key(*, customer: User, idempotency_key: str, fingerprint: str) -> Order | None:
    """The order this customer's key already placed, or None. Raises IdempotencyKeyReused when that order was
    placed by a different request: a key names one request, whatever its age.

    Every path that lands a repeat on an existing order goes through here (API, web checkout, the unique
    constraint's loser), so none of them can answer a new request with an old order.
    """
    order = Order.objects.filter(customer=customer, idempotency_key=idempotency_key).first()
    if order is None:
        return None
    # Reused key after the retention window: the key record may be purged, the order's fingerprint is not.
    # (Orders placed before the fingerprint was kept have none: nothing to compare, they are answered as before.)
    if order.request_fingerprint and order.request_fingerprint != fingerprint:
        record_idempotency_conflict("reused")
        raise IdempotencyKeyReused(
            f"This Idempotency-Key already placed order {order.number} with a different request. "
            "Use a new key for a new order."
        )
    return order


def order_placement(
    *, customer: User, idempotency_key: str, fingerprint: str, write: Callable[[], OrderPlacement]
) -> OrderPlacement:
    """Run one placement exactly once per (customer, idempotency_key); `write` runs inside its transaction.

    `write` ends in `do_order_create` (created=True), or finds the order a twin placed meanwhile
    (created=False). Raises what `write` raises, with nothing written.
    """
    # A cheap read for the common retry; the guarantee is the unique constraint handled below.
    existing = order_for_key(customer=customer, idempotency_key=idempotency_key, fingerprint=fingerprint)
    if existing is not None:
        # Resubmit after a dropped connection, a client retry, back-then-submit: the key already placed it.
        return OrderPlacement(order=existing, created=False)
    try:
        with locked_transaction():
            placement = write()
            if placement.created:
                enqueue_payment_after_commit(placement.order.pk)
    except IntegrityError as error:
        if is_idempotency_violation(error):
            # Double submit: a concurrent twin committed first; its order is this request's answer too.
            winner = order_for_key(customer=customer, idempotency_key=idempotency_key, fingerprint=fingerprint)
            assert winner is not None  # the constraint that refused us names a committed order
            return OrderPlacement(order=winner, created=False)
        if is_stock_violation(error):
            # Overselling: a code path that skipped the lock still cannot sell what is not there.
            record_stock_conflict("insufficient_stock")
            raise InsufficientStock("Not enough stock for some items.") from error
        raise
    if placement.created:
        logger.info("order placed", order_id=placement.order.pk, customer_id=customer.pk)
    return placement


def order_place(
    *,
    customer: User,
    lines: Sequence[LineRequest],
    shipping_address: ShippingAddress,
    note: str = "",
    idempotency_key: str,
    fingerprint: str = "",
) -> OrderPlacement:
    """Place an order from explicit lines (the API, a direct call). Placing the same key twice returns the first
    order.

    `fingerprint` identifies the request (the API passes the one its key record holds); without one, the
    fingerprint of the order request itself is used. The same key with another fingerprint is refused
    (IdempotencyKeyReused), however long ago the key was first used.
    """
    checked_lines = check_order_lines(lines)
    fingerprint = fingerprint or order_request_fingerprint(
        lines=checked_lines, shipping_address=shipping_address, note=note
    )

    def write() -> OrderPlacement:
        order = do_order_create(
            customer=customer,
            lines=checked_lines,
            shipping_address=shipping_address,
            note=note,
            idempotency_key=idempotency_key,
            fingerprint=fingerprint,
        )
        return OrderPlacement(order=order, created=True)

    return order_placement(customer=customer, idempotency_key=idempotency_key, fingerprint=fingerprint, write=write)


def enqueue_payment_after_commit(order_id: int) -> None:
    # Phantom work: the task is sent only once the order is committed, so a worker never sees a missing row.
    transaction.on_commit(lambda: payment_port.capture_enqueue(order_id))
