from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from accounts.models import User
from tests.factories import CategoryFactory, UserFactory
from tests.queries.budget import default_centre


@pytest.fixture
def greta(db: None) -> User:
    """Staff, granted the budget centre and the tea category."""
    greta = UserFactory.create(username="greta", is_staff=True)
    assign_perm("orders.fulfil_centre_orders", greta, default_centre())
    assign_perm("shop.manage_category_products", greta, CategoryFactory.create(slug="tea", name="Tea"))
    return greta
