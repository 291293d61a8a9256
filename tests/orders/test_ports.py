"""orders hands payment work to payments through one named port (orders/ports.py), never an import."""

from __future__ import annotations

import pytest

from orders.ports import _Unplugged, payment_port
from payments.order_port import PaymentsForOrders


def test_the_payments_app_plugs_itself_into_the_port_at_start_up() -> None:
    assert isinstance(payment_port.plugged, PaymentsForOrders)


def test_twin_an_unplugged_port_refuses_instead_of_placing_orders_nobody_charges(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(payment_port, "plugged", _Unplugged())
    with pytest.raises(RuntimeError, match="No payment port"):
        payment_port.capture_enqueue(1)
