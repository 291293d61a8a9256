from __future__ import annotations

import pytest
from guardian.shortcuts import assign_perm

from accounts.models import User
from core.permissions import FULFIL_CENTRE_ORDERS, MANAGE_CATEGORY_PRODUCTS
from tests.factories import CategoryFactory, UserFactory
from tests.queries.budget import default_centre


@pytest.fixture
def greta(db: None) -> User:
    """Staff, granted the budget centre and the tea category."""
    greta = UserFactory.create(username="greta", is_staff=True)
    assign_perm(FULFIL_CENTRE_ORDERS, greta, default_centre())
    assign_perm(MANAGE_CATEGORY_PRODUCTS, greta, CategoryFactory.create(slug="tea", name="Tea"))
    return greta
