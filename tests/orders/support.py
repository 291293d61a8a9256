"""Small helpers shared by the order service and race tests."""

from __future__ import annotations

from accounts.models import User
from orders.models import Order
from orders.services import LineRequest, ShippingAddress, order_place
from shop.models import Product
from tests.conftest import DEFAULT_ADDRESS

ADDRESS = ShippingAddress(**DEFAULT_ADDRESS)


def place(customer: User, *lines: tuple[Product, int], key: str = "k") -> Order:
    """Place an order through the real service and return it."""
    return order_place(
        customer=customer,
        lines=[LineRequest(product_id=product.pk, quantity=quantity) for product, quantity in lines],
        shipping_address=ADDRESS,
        idempotency_key=key,
    ).order


def stock_of(product: Product) -> int:
    return Product.objects.values_list("stock_on_hand", flat=True).get(pk=product.pk)
