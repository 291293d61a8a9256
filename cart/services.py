"""Cart writes and web checkout. Each function is one durable transaction that locks the cart row first.

Locking the cart row serialises every write to one customer's cart (two tabs, a double click), so the
version bump, the caps and the checkout all see the cart as it really is, never as a tab remembered it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import F

from accounts.models import User
from cart.models import Cart, CartItem
from cart.selectors import cart_order_lines
from core.errors import ApplicationError, Conflict, PreconditionFailed
from idempotency.services import IdempotencyKeyReused, idempotency_claim, idempotency_complete, request_fingerprint
from orders.models import Order
from orders.placement import OrderPlacement, do_order_create, order_for_key, order_placement
from orders.services import ShippingAddress
from shop.models import Product


class CartRefused(ApplicationError):
    code = "cart_refused"
    status = 400
    title = "The cart could not be changed."


class CartChanged(PreconditionFailed):
    """Stale tab: the cart was changed (another tab, a double submit) after this page was rendered."""

    code = "cart_changed"
    title = "Your cart changed since this page was loaded."


class CartEmpty(Conflict):
    code = "cart_empty"
    title = "Your cart is empty."


class PricesChanged(PreconditionFailed):
    """Price change: the checkout page showed other prices than the ones the order would be charged at."""

    code = "prices_changed"
    title = "Prices changed since this page was loaded."


@dataclass(frozen=True)
class CartUpdate:
    cart: Cart
    # False when the request changed nothing: a replayed form, a repeated "set to 3", an already removed line.
    changed: bool


def _lock_cart(user: User) -> Cart:
    # Two tabs, one cart: the row lock makes every cart write for this customer wait its turn.
    # get_or_create copes with two first-ever writes racing: the loser's INSERT fails and it reads the winner's row.
    cart, _ = Cart.objects.select_for_update(of=("self",)).get_or_create(user=user)
    return cart


def _bump_version(cart: Cart) -> Cart:
    Cart.objects.filter(pk=cart.pk).update(version=F("version") + 1)
    cart.refresh_from_db(fields=["version", "updated_at"])
    return cart


def _active_product(product_id: int) -> Product:
    product = Product.objects.filter(pk=product_id, is_active=True).only("id", "name", "stock_on_hand").first()
    if product is None:
        raise CartRefused("That product does not exist or is no longer sold.", code="unknown_product")
    return product


def _check_quantity(product: Product, quantity: int) -> None:
    cap = settings.ORDER_MAX_QUANTITY_PER_LINE
    if quantity > cap:
        raise CartRefused(f"You can have at most {cap} of {product.name} in one order.", code="quantity_cap")
    if quantity > product.stock_on_hand:
        # A courtesy, not the guarantee: checkout re-checks stock under the product row lock.
        left = product.stock_on_hand
        detail = f"Only {left} of {product.name} left." if left else f"{product.name} is out of stock."
        raise CartRefused(detail, code="insufficient_stock")


def cart_add_item(*, user: User, product_id: int, quantity: int = 1, form_token: str | None = None) -> CartUpdate:
    """Add `quantity` of a product. A form submitted twice (same `form_token`) adds it once."""
    if quantity < 1:
        raise CartRefused("Quantity must be at least 1.", code="invalid_quantity")
    with transaction.atomic(durable=True):
        cart = _lock_cart(user)
        if form_token:
            # Double submit: the form's token is claimed by a unique insert in this same transaction; the twin
            # request waited on the cart lock above, finds the claim committed and adds nothing.
            fingerprint = hashlib.sha256(f"cart-add {product_id} {quantity}".encode()).hexdigest()
            try:
                claim = idempotency_claim(user=user, key=f"web-cart-add:{form_token}", fingerprint=fingerprint)
            except IdempotencyKeyReused:
                raise CartRefused("This form was already used for something else. Reload the page.") from None
            if claim.is_replay:
                return CartUpdate(cart=cart, changed=False)
            idempotency_complete(record=claim.record, status=200, body="", headers={})
        product = _active_product(product_id)
        in_cart = CartItem.objects.filter(cart=cart, product=product).values_list("quantity", flat=True).first()
        if in_cart is None and cart.items.count() >= settings.ORDER_MAX_LINES:
            raise CartRefused(f"A cart holds at most {settings.ORDER_MAX_LINES} different products.")
        _check_quantity(product, (in_cart or 0) + quantity)
        if in_cart is None:
            CartItem.objects.create(cart=cart, product=product, quantity=quantity)
        else:
            CartItem.objects.filter(cart=cart, product=product).update(quantity=F("quantity") + quantity)
        return CartUpdate(cart=_bump_version(cart), changed=True)


def cart_set_quantity(*, user: User, product_id: int, quantity: int) -> CartUpdate:
    """Set a line to exactly `quantity` (0 removes it). Setting the same value twice is harmless."""
    if quantity < 0:
        raise CartRefused("Quantity cannot be negative.", code="invalid_quantity")
    if quantity == 0:
        return cart_remove_item(user=user, product_id=product_id)
    with transaction.atomic(durable=True):
        cart = _lock_cart(user)
        if not CartItem.objects.filter(cart=cart, product_id=product_id).exists():
            raise CartRefused("That product is not in your cart any more.", code="not_in_cart")
        product = Product.objects.filter(pk=product_id).only("id", "name", "stock_on_hand").get()
        _check_quantity(product, quantity)
        changed = (
            CartItem.objects.filter(cart=cart, product_id=product_id)
            .exclude(quantity=quantity)
            .update(quantity=quantity)
        )
        # Double submit: a repeated "set to 3" changes nothing, so it does not make other tabs stale either.
        return CartUpdate(cart=_bump_version(cart) if changed else cart, changed=bool(changed))


def cart_remove_item(*, user: User, product_id: int) -> CartUpdate:
    """Remove a line. Removing a line that is already gone (double click, other tab) is a no-op."""
    with transaction.atomic(durable=True):
        cart = _lock_cart(user)
        deleted, _ = CartItem.objects.filter(cart=cart, product_id=product_id).delete()
        return CartUpdate(cart=_bump_version(cart) if deleted else cart, changed=bool(deleted))


# Every submission of one rendered checkout form is the same request: its key is the form's own token, and the
# form's fields (address, note) may be corrected and resubmitted. What the fingerprint tells apart is the
# channel: an API order placed under the same key is a different request, and is refused, never returned.
CHECKOUT_FINGERPRINT = request_fingerprint(method="POST", path="cart.services.cart_checkout", payload={})


def _existing_order(user: User, idempotency_key: str) -> Order | None:
    return order_for_key(customer=user, idempotency_key=idempotency_key, fingerprint=CHECKOUT_FINGERPRINT)


def cart_checkout(
    *,
    user: User,
    expected_cart_version: int,
    shipping_address: ShippingAddress,
    note: str,
    idempotency_key: str,
    expected_prices: Mapping[int, Decimal] | None = None,
) -> OrderPlacement:
    """Turn the cart into an order through the one placement use case (orders/placement.py), exactly once per
    rendered checkout form.

    `expected_cart_version` and `expected_prices` are what the checkout page showed; if the cart or a price
    changed since, nothing is written and the caller is told (CartChanged, PricesChanged).
    """

    def write() -> OrderPlacement:
        cart = _lock_cart(user)
        # Double click: the twin request waited on the cart lock; once the first committed, its order is
        # visible here (READ COMMITTED reads the latest commit per statement), so the twin lands on it.
        existing = _existing_order(user, idempotency_key)
        if existing is not None:
            return OrderPlacement(order=existing, created=False)
        if cart.version != expected_cart_version:
            # Stale tab: the cart changed after this form was rendered; never order what the user did not see.
            raise CartChanged(
                "Your cart was changed in another tab or window after this page was loaded. "
                "Review it and place the order again.",
                extra={"current_version": cart.version},
            )
        lines = cart_order_lines(cart=cart)
        if not lines:
            raise CartEmpty("Your cart is empty: there is nothing to order.")
        order = do_order_create(
            customer=user,
            lines=lines,
            shipping_address=shipping_address,
            note=note,
            idempotency_key=idempotency_key,
            fingerprint=CHECKOUT_FINGERPRINT,
        )
        if expected_prices is not None:
            # Price change: compare with the prices read under the product row locks; raising here rolls
            # back the order, its lines and the stock decrement together.
            changed = [
                f"{line.name}: was {expected_prices.get(line.product_id)}, now {line.unit_price} {order.currency}."
                for line in order.lines.all()
                if expected_prices.get(line.product_id) != line.unit_price
            ]
            if changed:
                raise PricesChanged(
                    "Some prices changed since this page was loaded. Check the new total and place the order again.",
                    extra={"changes": changed},
                )
        CartItem.objects.filter(cart=cart).delete()
        _bump_version(cart)
        return OrderPlacement(order=order, created=True)

    return order_placement(
        customer=user, idempotency_key=idempotency_key, fingerprint=CHECKOUT_FINGERPRINT, write=write
    )
