"""Order write use cases. Each public function owns one durable transaction; side effects run after commit."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from core.errors import ApplicationError, Conflict, InsufficientStock, PreconditionFailed
from core.locking import locked_transaction, set_lock_timeout
from core.metrics import record_idempotency_conflict, record_stock_conflict
from idempotency.services import IdempotencyKeyReused, request_fingerprint
from mail.models import MailEvent
from mail.services import order_mail_enqueue
from orders.models import STATUSES_WITHOUT_STOCK, FulfilmentCentre, Order, OrderLine, OrderStatus
from shop.stock import is_stock_violation, stock_check_available, stock_lock_for_sale, stock_return, stock_take

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LineRequest:
    product_id: int
    quantity: int


@dataclass(frozen=True)
class ShippingAddress:
    name: str
    line1: str
    city: str
    postal_code: str
    country: str
    line2: str = ""


@dataclass(frozen=True)
class OrderPlacement:
    order: Order
    created: bool


class InvalidOrder(ApplicationError):
    code = "invalid"
    status = 400
    title = "Invalid order."


def check_order_lines(lines: Sequence[LineRequest]) -> list[LineRequest]:
    """Validate line shape and caps before any lock is taken; collect every problem, raise once."""
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


def _route_to_centre(country: str) -> FulfilmentCentre | None:
    centres = list(FulfilmentCentre.objects.only("id", "country_codes", "is_default"))
    for centre in centres:
        if country.upper() in centre.country_codes.upper().split():
            return centre
    return next((centre for centre in centres if centre.is_default), None)


def do_order_create(
    *,
    customer: User,
    lines: Sequence[LineRequest],
    shipping_address: ShippingAddress,
    note: str,
    idempotency_key: str,
    fingerprint: str,
) -> Order:
    """Lock stock, re-check it, write the order and its lines, decrement stock. Call inside a transaction."""
    assert connection.in_atomic_block, "do_order_create must run inside the caller's transaction"
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
        fulfilment_centre=_route_to_centre(shipping_address.country),
        currency=settings.SHOP_CURRENCY,
        total=sum((line.line_total for line in order_lines), Decimal("0.00")),
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        shipping_name=shipping_address.name,
        shipping_line1=shipping_address.line1,
        shipping_line2=shipping_address.line2,
        shipping_city=shipping_address.city,
        shipping_postal_code=shipping_address.postal_code,
        shipping_country=shipping_address.country.upper(),
        note=note,
    )
    order.number = f"SO-{order.pk:06d}"
    Order.objects.filter(pk=order.pk).update(number=order.number)
    for order_line in order_lines:
        order_line.order = order
    OrderLine.objects.bulk_create(order_lines)
    stock_take(wanted)

    from payments.services import payment_record_for_order

    # Lost payment work: the payment row is written in this transaction; the task is only a nudge.
    payment_record_for_order(order=order)
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


def order_place(
    *,
    customer: User,
    lines: Sequence[LineRequest],
    shipping_address: ShippingAddress,
    note: str = "",
    idempotency_key: str,
    fingerprint: str = "",
) -> OrderPlacement:
    """Place an order in one transaction. Placing the same key twice returns the first order.

    `fingerprint` identifies the request (the API passes the one its key record holds); without one, the
    fingerprint of the order request itself is used. The same key with another fingerprint is refused
    (IdempotencyKeyReused), however long ago the key was first used.
    """
    checked_lines = check_order_lines(lines)
    fingerprint = fingerprint or order_request_fingerprint(
        lines=checked_lines, shipping_address=shipping_address, note=note
    )
    # A cheap read for the common retry; the guarantee is the unique constraint handled below.
    existing = order_for_key(customer=customer, idempotency_key=idempotency_key, fingerprint=fingerprint)
    if existing is not None:
        return OrderPlacement(order=existing, created=False)
    try:
        with locked_transaction():
            order = do_order_create(
                customer=customer,
                lines=checked_lines,
                shipping_address=shipping_address,
                note=note,
                idempotency_key=idempotency_key,
                fingerprint=fingerprint,
            )
            enqueue_payment_after_commit(order.pk)
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
    logger.info("order placed", extra={"order_id": order.pk, "customer_id": customer.pk})
    return OrderPlacement(order=order, created=True)


def enqueue_payment_after_commit(order_id: int) -> None:
    from payments.tasks import payment_capture_enqueue

    # Phantom work: the task is sent only once the order is committed, so a worker never sees a missing row.
    transaction.on_commit(lambda: payment_capture_enqueue(order_id))


def order_update_details(
    *,
    order: Order,
    expected_version: int,
    shipping_address: ShippingAddress | None = None,
    note: str | None = None,
) -> Order:
    """Edit shipping address and note, but only from the version the client read (optimistic locking)."""
    changes: dict[str, object] = {}
    if shipping_address is not None:
        changes.update(
            # Wrong warehouse: a new destination country may be served by another fulfilment centre.
            fulfilment_centre=_route_to_centre(shipping_address.country),
            shipping_name=shipping_address.name,
            shipping_line1=shipping_address.line1,
            shipping_line2=shipping_address.line2,
            shipping_city=shipping_address.city,
            shipping_postal_code=shipping_address.postal_code,
            shipping_country=shipping_address.country.upper(),
        )
    if note is not None:
        changes["note"] = note
    with locked_transaction():
        # Lost update: the write only lands if nobody changed the order since the client read it.
        updated = Order.objects.filter(
            pk=order.pk, version=expected_version, status=OrderStatus.PENDING_PAYMENT
        ).update(**changes, version=F("version") + 1, updated_at=timezone.now())
        current = Order.objects.get(pk=order.pk)
    if updated:
        return current
    if current.status != OrderStatus.PENDING_PAYMENT:
        raise Conflict(
            f"Order {current.number} is {current.get_status_display().lower()} and can no longer be edited.",
            code="not_editable",
        )
    raise PreconditionFailed(
        f"Order {current.number} changed since you read it (you had version {expected_version}, "
        f"it is now version {current.version}).",
        extra={"current_version": current.version},
    )


def order_cancel(*, order: Order, only_if_status: OrderStatus | None = None) -> Order:
    """Cancel an order and return its stock exactly once. Cancelling a cancelled order is a no-op.

    `only_if_status` lets a background job cancel only what it decided on: the reconciliation job abandons an
    order only while it is still pending_payment, never one a late capture has just paid.
    """
    with locked_transaction():
        locked = Order.objects.select_for_update(of=("self",)).get(pk=order.pk)
        if locked.status == OrderStatus.CANCELLED:
            return locked  # Double cancel: the stock went back the first time; nothing more to do.
        if only_if_status is not None and locked.status != only_if_status:
            # Stale decision: the order moved since the caller looked (a capture settled it); leave it alone.
            raise Conflict(f"Order {locked.number} is no longer {only_if_status}.", code="not_cancellable")
        if locked.status not in {OrderStatus.PENDING_PAYMENT, OrderStatus.PAID}:
            raise Conflict(
                f"Order {locked.number} is {locked.get_status_display().lower()} and cannot be cancelled.",
                code="not_cancellable",
            )
        was_paid = locked.status == OrderStatus.PAID
        if do_order_release_stock(order=locked, to_status=OrderStatus.CANCELLED):
            # The cancel notice (with the refund when it was paid) commits with the cancel, once per order.
            order_mail_enqueue(order=locked, event=MailEvent.ORDER_CANCELLED)
        if was_paid:
            from payments.tasks import payment_refund_enqueue

            transaction.on_commit(lambda: payment_refund_enqueue(locked.pk))
        cancelled = Order.objects.get(pk=locked.pk)
    logger.info("order cancelled", extra={"order_id": cancelled.pk, "was_paid": was_paid})
    return cancelled


def do_order_release_stock(*, order: Order, to_status: OrderStatus) -> bool:
    """Move an order into a state that holds no stock (cancelled, payment_failed) and put its units back on the
    shelf, exactly once. The one place stock comes back; `order_cancel` and the payment failure both call it.

    Must be called inside the transaction of the caller's use case, holding the order's row lock
    (`select_for_update`), with `order` as read under that lock. Returns whether the order moved.
    """
    assert connection.in_atomic_block, "the stock must come back in the transaction that moves the order"
    assert to_status in STATUSES_WITHOUT_STOCK, f"{to_status} is a state that holds stock"
    now = timezone.now()
    first_release = order.stock_released_at is None
    extra: dict[str, object] = {"cancelled_at": now} if to_status == OrderStatus.CANCELLED else {}
    # Guarded transition: only from the state we locked; the payment task and the cancel use the same guard.
    # Stock held forever: the release marker is set in the same UPDATE as the state, so the database (CHECK
    # order_stock_released_when_closed) sees a closed order with its units back, or neither.
    moved = Order.objects.filter(pk=order.pk, status=order.status).update(
        status=to_status,
        stock_released_at=order.stock_released_at or now,
        version=F("version") + 1,
        updated_at=now,
        **extra,
    )
    if moved and first_release:
        # Stock returned twice: only the move that set the marker returns the units.
        stock_return(list(OrderLine.objects.filter(order_id=order.pk).values_list("product_id", "quantity")))
    return moved == 1


def order_transition(*, order_id: int, from_status: OrderStatus, to_status: OrderStatus) -> bool:
    """Move an order between states only if it is still in `from_status`. Returns whether it moved.

    Must be called inside the caller's transaction when other writes depend on it. A move into a state that
    holds no stock goes through `do_order_release_stock` instead, which returns the units with it.
    """
    # Stock held forever: a plain transition to payment_failed or cancelled would leave the units held.
    assert to_status not in STATUSES_WITHOUT_STOCK, "use do_order_release_stock: the units must come back"
    extra: dict[str, object] = {}
    if to_status == OrderStatus.PAID:
        extra["paid_at"] = timezone.now()
    # Guarded transition: a duplicated task or a racing cancel cannot move an order twice.
    moved = Order.objects.filter(pk=order_id, status=from_status).update(
        status=to_status, version=F("version") + 1, updated_at=timezone.now(), **extra
    )
    return moved == 1


def order_fulfil(*, order: Order) -> Order:
    # Lock pile-up: the guarded UPDATE waits for the order's row lock (a cancel, a capture) only so long.
    with locked_transaction():
        if not order_transition(order_id=order.pk, from_status=OrderStatus.PAID, to_status=OrderStatus.FULFILLED):
            current = Order.objects.get(pk=order.pk)
            raise Conflict(
                f"Order {current.number} is {current.status}; only paid orders ship.", code="not_fulfillable"
            )
        shipped = Order.objects.get(pk=order.pk)
        # Only the move that shipped it mails: a second fulfil is refused above and promises nothing.
        order_mail_enqueue(order=shipped, event=MailEvent.ORDER_FULFILLED)
    return shipped
