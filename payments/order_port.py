"""The payments side of orders' payment port (orders/ports.py), plugged in by PaymentsConfig.ready."""

from __future__ import annotations

from orders.models import Order
from payments import tasks
from payments.services import payment_record_for_order


class PaymentsForOrders:
    def record_for_order(self, *, order: Order) -> None:
        payment_record_for_order(order=order)

    def capture_enqueue(self, order_id: int) -> None:
        # Looked up at call time: payments' own tests and the reconciliation share this one task sender.
        tasks.payment_capture_enqueue(order_id)

    def refund_enqueue(self, order_id: int) -> None:
        tasks.payment_refund_enqueue(order_id)
