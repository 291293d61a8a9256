"""Order write use cases after placement (orders/placement.py): edit, cancel, transitions, fulfilment.

Each public function owns one durable transaction; side effects run after commit."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import structlog
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from core.errors import Conflict, PreconditionFailed
from core.locking import locked_transaction
from mail.models import MailEvent
from mail.services import order_mail_enqueue
from orders.models import STATUSES_WITHOUT_STOCK, FulfilmentCentre, Order, OrderLine, OrderStatus
from orders.ports import payment_port
from shop.stock import stock_return

logger = structlog.get_logger(__name__)


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

    def as_order_fields(self) -> dict[str, str]:
        """The Order columns this address fills: the one mapping placement and the edit both use."""
        return {
            "shipping_name": self.name,
            "shipping_line1": self.line1,
            "shipping_line2": self.line2,
            "shipping_city": self.city,
            "shipping_postal_code": self.postal_code,
            "shipping_country": self.country.upper(),
        }


def route_to_centre(country: str) -> FulfilmentCentre | None:
    centres = list(FulfilmentCentre.objects.only("id", "country_codes", "is_default"))
    for centre in centres:
        if country.upper() in centre.country_codes.upper().split():
            return centre
    return next((centre for centre in centres if centre.is_default), None)


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
            fulfilment_centre=route_to_centre(shipping_address.country),
            **shipping_address.as_order_fields(),
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


def order_edit_merge(
    *, original: Mapping[str, str] | None, yours: Mapping[str, str], latest: Mapping[str, str]
) -> dict[str, str]:
    """A stale edit re-applied (three-way merge): your edits on top of the latest version; fields you did not
    touch keep the other edit's value. Without the original (its signature did not check out) all are yours."""
    # Lost update: the other edit survives wherever you left the field as it was when you read the order.
    return {
        name: yours[name] if original is None or original.get(name) != yours[name] else latest[name] for name in yours
    }


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
            # Phantom work: the refund task is sent only once the cancel is committed.
            transaction.on_commit(lambda: payment_port.refund_enqueue(locked.pk))
        cancelled = Order.objects.get(pk=locked.pk)
    logger.info("order cancelled", order_id=cancelled.pk, was_paid=was_paid)
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
