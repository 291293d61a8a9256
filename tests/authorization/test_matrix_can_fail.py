"""Twins: the matrix catches the failures it exists for. Each test breaks one protection on purpose (an
unscoped lookup, a view that forgot its permission) and shows that the matrix cell then fails."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.permissions import AllowAny

from accounts.models import User
from orders import apis as order_apis
from orders.models import Order
from tests.authorization.scene import build_scene
from tests.authorization.test_matrix import CELLS, check_cell

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _zeal_reports_only(settings: Any) -> None:
    settings.ZEAL_RAISE = False  # as in test_matrix.py: these twins are about authorization


def _cell(cell_id: str):  # type: ignore[no-untyped-def]
    return next(cell for cell in CELLS if cell.id == cell_id)


def test_twin_an_unscoped_order_lookup_fails_the_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    def unscoped_get(*, customer: User, order_id: int) -> Order:
        # The bug this project exists to prevent: the id is trusted, the owner is not checked.
        return Order.objects.prefetch_related("lines").get(pk=order_id)

    monkeypatch.setattr(order_apis, "order_get_for_customer", unscoped_get)
    scene = build_scene()
    with pytest.raises(AssertionError, match="expected 404, got 200"):
        check_cell(_cell("api:order GET other_customer"), scene)


def test_twin_an_unscoped_cancel_is_caught_before_it_counts_as_harmless(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        order_apis, "order_get_for_customer", lambda *, customer, order_id: Order.objects.get(pk=order_id)
    )
    scene = build_scene()
    with pytest.raises(AssertionError):
        check_cell(_cell("api:order-cancel POST other_customer"), scene)
    # ... and the damage the matrix reports is real: bob cancelled alice's order.
    assert Order.objects.get(pk=scene.order.pk).status == "cancelled"


def test_twin_a_staff_view_without_its_permission_class_fails_the_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    from backoffice.apis import StaffOrderListApi

    monkeypatch.setattr(StaffOrderListApi, "permission_classes", [AllowAny])
    scene = build_scene()
    with pytest.raises(AssertionError, match="expected 403"):
        check_cell(_cell("api:staff-orders GET owner"), scene)
