from __future__ import annotations

import pytest

from accounts.models import User
from tests.factories import UserFactory


@pytest.fixture
def teacher(db: None) -> User:
    """Runs the workshop: a staff account (the teacher page is staff only)."""
    return UserFactory.create(username="teacher", is_staff=True)


@pytest.fixture
def student(db: None) -> User:
    """Another staff account in the room: their seat, their runs."""
    return UserFactory.create(username="student07", is_staff=True)
