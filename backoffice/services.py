"""Staff actions. Each one looks the object up through the staff member's grants first: the action is only
reachable for an object inside them, whatever id the request names."""

from __future__ import annotations

from accounts.models import User
from backoffice.selectors import order_get_for_fulfilment
from orders.models import Order
from orders.services import order_fulfil


def staff_order_fulfil(*, user: User, order_id: int) -> Order:
    """Ship a paid order of a granted centre. Outside the grants: NotFound. Not paid: Conflict (409)."""
    # Broken object-level authorization: the scoped lookup is the object check, right before the action.
    order = order_get_for_fulfilment(user=user, order_id=order_id)
    return order_fulfil(order=order)
