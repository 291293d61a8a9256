"""The cart's part of the catalog's pages, as template tags: the product page (shop) shows the buy form and how
many of the product are in the cart, and the catalog never imports the cart (cart depends on shop, not the
reverse; pyproject.toml's contracts). Templates load these by name: `{% load cart_tags %}`.
"""

from __future__ import annotations

from typing import Any

from django import template

from cart.forms import AddToCartForm
from cart.selectors import cart_get
from core.auth import request_user
from core.web import new_form_token
from shop.models import Product

register = template.Library()


@register.simple_tag
def add_to_cart_form() -> AddToCartForm:
    # Double submit: each rendered buy form carries its own token; the cart adds once per token.
    return AddToCartForm(initial={"quantity": 1, "form_token": new_form_token()})


@register.simple_tag(takes_context=True)
def quantity_in_cart(context: dict[str, Any], product: Product) -> int:
    request = context["request"]
    if not request.user.is_authenticated:
        return 0
    return cart_get(user=request_user(request)).quantity_of(product.pk)
