"""Taking and returning stock: the one module that moves `Product.stock_on_hand`.

Modelled on saleor's warehouse/management.py (allocate, deallocate): a sale locks the product rows in one
order, re-checks what is on the shelf under the lock and takes the units with an `F()` decrement; a
cancellation puts them back the same way. Callers own the transaction (an order placement, a cancel, a payment
failure): the units move with the order's own rows, or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from django.db import IntegrityError, connection
from django.db.models import F

from core.errors import InsufficientStock
from core.locking import lock_in_order
from core.metrics import record_stock_conflict
from shop.models import Product

# The database's own guarantee (shop/models.py): CHECK (stock_on_hand >= 0).
STOCK_NOT_NEGATIVE = "product_stock_on_hand_not_negative"


def stock_lock_for_sale(product_ids: Iterable[int]) -> dict[int, Product]:
    """Lock the products a sale will take units of, and read them under the lock, by primary key.

    Two buyers, one unit: the rows are locked in primary-key order (no deadlock between opposite carts), so the
    stock read here is what is really on the shelf until the caller's transaction ends.
    """
    assert connection.in_atomic_block, "a row lock outside a transaction is released at once"
    return {
        product.pk: product
        for product in lock_in_order(Product.objects.filter(pk__in=set(product_ids))).only(
            "id", "sku", "name", "price", "currency", "is_active", "stock_on_hand"
        )
    }


def stock_check_available(*, locked: Mapping[int, Product], wanted: Mapping[int, int]) -> None:
    """Raise InsufficientStock listing every short product; `locked` is what `stock_lock_for_sale` read."""
    # Overselling: availability is re-checked inside the lock, never trusted from an earlier read.
    short = [
        {"product_id": product_id, "requested": quantity, "available": locked[product_id].stock_on_hand}
        for product_id, quantity in wanted.items()
        if locked[product_id].stock_on_hand < quantity
    ]
    if short:
        record_stock_conflict("insufficient_stock")
        raise InsufficientStock("Not enough stock for some items.", extra={"items": short})


def stock_take(wanted: Mapping[int, int]) -> None:
    """Take `wanted` units (product id -> quantity) off the shelf. Call holding the locks of a checked sale."""
    assert connection.in_atomic_block, "stock must move in the transaction of the order that takes it"
    for product_id, quantity in sorted(wanted.items()):
        # Overselling: the CHECK (stock_on_hand >= 0) constraint backs this decrement up in the database.
        Product.objects.filter(pk=product_id).update(stock_on_hand=F("stock_on_hand") - quantity)


def stock_return(returned: Sequence[tuple[int, int]]) -> None:
    """Put units (product id, quantity) back on the shelf, in primary-key order like a sale.

    Call exactly once per release, inside the transaction that records the release (orders do that with
    `stock_released_at`): stock returned twice is stock that was never there.
    """
    assert connection.in_atomic_block, "stock must move in the transaction of the order that returns it"
    # Deadlock: products in primary-key order, like a sale, so two releases and a placement never wait on
    # each other in a cycle.
    for product_id, quantity in sorted(returned):
        Product.objects.filter(pk=product_id).update(stock_on_hand=F("stock_on_hand") + quantity)


def is_stock_violation(error: IntegrityError) -> bool:
    """True when the database's CHECK refused to take stock below zero (a path that skipped the lock)."""
    diag = getattr(error.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == STOCK_NOT_NEGATIVE
