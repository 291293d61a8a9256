from __future__ import annotations

from django.db.models import Sum

from accounts.models import User
from cart.models import CartItem


def cart_item_count(*, user: User) -> int:
    total = CartItem.objects.filter(cart__user=user).aggregate(total=Sum("quantity"))["total"]
    return int(total or 0)
