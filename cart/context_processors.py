from __future__ import annotations

from django.db import DatabaseError
from django.http import HttpRequest

from cart.selectors import cart_item_count


def cart_summary(request: HttpRequest) -> dict[str, int]:
    """The cart badge in the header. A database hiccup hides the badge rather than breaking the page."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"cart_count": 0}
    try:
        return {"cart_count": cart_item_count(user=user)}
    except DatabaseError:
        return {"cart_count": 0}
