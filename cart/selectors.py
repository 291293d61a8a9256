"""Cart reads: the cart as the customer sees it, and what changed since a page was rendered.

Query shape: `cart_get` costs two queries whatever the cart size (the cart row, then its items JOINed to
their products). The snapshot helpers are pure functions, so a stale tab can be told exactly what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.db.models import Sum

from accounts.models import User
from cart.models import Cart, CartItem
from orders.models import Order
from orders.services import LineRequest
from shop.models import Product

CART_PRODUCT_FIELDS = (
    "product__id",
    "product__sku",
    "product__name",
    "product__slug",
    "product__price",
    "product__currency",
    "product__stock_on_hand",
    "product__is_active",
    "product__category__id",
    "product__category__slug",
)


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def unit_price(self) -> Decimal:
        return self.product.price

    @property
    def line_total(self) -> Decimal:
        return self.product.price * self.quantity

    @property
    def problem(self) -> str | None:
        """Why this line cannot be ordered as it stands, in words for the customer (None when it can)."""
        if not self.product.is_active:
            return "No longer sold. Remove it to check out."
        if self.product.stock_on_hand == 0:
            return "Out of stock. Remove it to check out."
        if self.product.stock_on_hand < self.quantity:
            return f"Only {self.product.stock_on_hand} left. Lower the quantity to check out."
        return None


@dataclass(frozen=True)
class CartView:
    # 0 means "no cart row yet"; a real cart starts at version 1 and every change bumps it.
    version: int
    lines: list[CartLine] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.lines

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), Decimal("0.00"))

    @property
    def item_count(self) -> int:
        return sum(line.quantity for line in self.lines)

    @property
    def has_problems(self) -> bool:
        return any(line.problem for line in self.lines)

    @property
    def currency(self) -> str:
        return str(settings.SHOP_CURRENCY)

    def quantity_of(self, product_id: int) -> int:
        return next((line.quantity for line in self.lines if line.product.pk == product_id), 0)


def cart_item_count(*, user: User) -> int:
    total = CartItem.objects.filter(cart__user=user).aggregate(total=Sum("quantity"))["total"]
    return int(total or 0)


def cart_order_lines(*, cart: Cart) -> list[LineRequest]:
    """What the checkout orders: the cart's lines, in product order. Call holding the cart's row lock."""
    items = CartItem.objects.filter(cart=cart).order_by("product_id").values_list("product_id", "quantity")
    return [LineRequest(product_id=product_id, quantity=quantity) for product_id, quantity in items]


def product_for_cart_message(*, product_id: int) -> tuple[str, str] | None:
    """The (slug, name) of a product still on sale, for the page and message after an add; None if it is not."""
    return Product.objects.filter(pk=product_id, is_active=True).values_list("slug", "name").first()


def cart_get(*, user: User) -> CartView:
    """The signed-in user's cart with current prices and stock. Two queries, however many lines."""
    version = Cart.objects.filter(user=user).values_list("version", flat=True).first()
    if version is None:
        return CartView(version=0)
    # N+1: each item's product arrives in the same query (JOIN), never one query per line.
    items = (
        CartItem.objects.filter(cart__user=user)
        .select_related("product__category")
        .only("id", "quantity", "cart_id", "added_at", *CART_PRODUCT_FIELDS)
        .order_by("added_at", "id")
    )
    return CartView(version=version, lines=[CartLine(product=item.product, quantity=item.quantity) for item in items])


# --- What the page showed, and what changed since --------------------------------------------------------------


@dataclass(frozen=True)
class SeenLine:
    """One cart line as a rendered page showed it: product, quantity and the unit price on screen."""

    product_id: int
    quantity: int
    unit_price: Decimal


def cart_snapshot(cart: CartView) -> str:
    """Encode what the page shows (`12:2:12.50,15:1:9.90`) for a hidden field, to compare at submit time."""
    return ",".join(f"{line.product.pk}:{line.quantity}:{line.unit_price}" for line in cart.lines)


def cart_snapshot_parse(raw: str) -> dict[int, SeenLine]:
    """Parse a snapshot from a form. Raises ValueError on anything malformed (tampered or truncated)."""
    seen: dict[int, SeenLine] = {}
    if not raw.strip():
        return seen
    parts = raw.split(",")
    if len(parts) > settings.ORDER_MAX_LINES:
        raise ValueError("too many lines")
    for part in parts:
        product_id, quantity, unit_price = part.split(":")
        try:
            line = SeenLine(product_id=int(product_id), quantity=int(quantity), unit_price=Decimal(unit_price))
        except InvalidOperation as error:
            raise ValueError(f"bad price {unit_price!r}") from error
        if line.product_id < 1 or line.quantity < 1 or not line.unit_price.is_finite():
            raise ValueError(f"bad line {part!r}")
        seen[line.product_id] = line
    return seen


def cart_changes(*, seen: dict[int, SeenLine], current: CartView) -> list[str]:
    """Say, line by line, how the cart now differs from what the page showed. Empty when nothing visible did.

    Costs at most one query: the names of products that left the cart since the page was rendered.
    """
    changes: list[str] = []
    current_by_id = {line.product.pk: line for line in current.lines}
    for product_id, line in current_by_id.items():
        before = seen.get(product_id)
        if before is None:
            changes.append(f"{line.product.name} was added (quantity {line.quantity}).")
            continue
        if before.quantity != line.quantity:
            changes.append(f"{line.product.name}: quantity changed from {before.quantity} to {line.quantity}.")
        if before.unit_price != line.unit_price:
            changes.append(
                f"{line.product.name}: price changed from {before.unit_price} to {line.unit_price} {current.currency}."
            )
    removed_ids = [product_id for product_id in seen if product_id not in current_by_id]
    if removed_ids:
        names = dict(Product.objects.filter(pk__in=removed_ids).values_list("id", "name"))
        for product_id in removed_ids:
            changes.append(f"{names.get(product_id, f'Product {product_id}')} was removed.")
    return changes


def checkout_address_initial(*, user: User) -> dict[str, str]:
    """Pre-fill checkout with the address of the customer's last order (one query, indexed by customer, -id)."""
    last = (
        Order.objects.filter(customer=user)
        .order_by("-id")
        .only(
            "shipping_name",
            "shipping_line1",
            "shipping_line2",
            "shipping_city",
            "shipping_postal_code",
            "shipping_country",
        )
        .first()
    )
    if last is None:
        return {"name": user.get_full_name()}
    return {key: value for key, value in last.shipping_address.items()}
