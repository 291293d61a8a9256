"""What orders hands on to payments, without importing payments: one explicit, named port.

Payments depends on orders, never the reverse (the import contracts in pyproject.toml say so). Orders calls
`payment_port`; the payments app plugs its side in at start-up (`PaymentsConfig.ready`, payments/apps.py).
Tests that want to see or stop the payment work patch this port's methods, never an import site:

    monkeypatch.setattr(payment_port, "capture_enqueue", sent.append)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from orders.models import Order


class PaymentPort(Protocol):
    def record_for_order(self, *, order: Order) -> None:
        """Write the order's pending payment row. Called inside the placement's transaction."""

    def capture_enqueue(self, order_id: int) -> None:
        """Send the capture task for a committed order (a nudge: the payment row is the truth)."""

    def refund_enqueue(self, order_id: int) -> None:
        """Send the refund task for a committed cancel of a paid order."""


class _Unplugged:
    """Until payments plugs in: an order placed without the payments app would never be charged, so refuse."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("No payment port: is 'payments' in INSTALLED_APPS?")

    record_for_order = capture_enqueue = refund_enqueue = _refuse


class _PaymentPortSlot:
    """The one module-level seam; `payment_port.<method>` always calls whatever is plugged in right now."""

    def __init__(self) -> None:
        self.plugged: PaymentPort = _Unplugged()

    def record_for_order(self, *, order: Order) -> None:
        self.plugged.record_for_order(order=order)

    def capture_enqueue(self, order_id: int) -> None:
        self.plugged.capture_enqueue(order_id)

    def refund_enqueue(self, order_id: int) -> None:
        self.plugged.refund_enqueue(order_id)


payment_port = _PaymentPortSlot()


def plug_payments(port: PaymentPort) -> None:
    payment_port.plugged = port
