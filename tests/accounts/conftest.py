"""Shared set-up for the account flow tests: fresh throttle counters, recorded mail, a verified alice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from accounts.models import User
from core.redis_pool import redis_connection
from mail import dispatch
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def fresh_throttle_counters(settings: Any) -> Iterator[None]:
    """Counters live in Redis across tests: each test starts from zero (and may set its own rates)."""
    settings.THROTTLE_RATES = {**settings.THROTTLE_RATES}
    client = redis_connection()
    for key in client.scan_iter("throttle:*"):
        client.delete(key)
    yield


@pytest.fixture(autouse=True)
def mail_tasks(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The delivery tasks the outbox asked for: these tests check the rows, tests/mail/ the delivery."""
    sent: list[int] = []
    monkeypatch.setattr(dispatch, "mail_delivery_enqueue", sent.append)
    return sent


@pytest.fixture
def verified_alice(db: None) -> User:
    return UserFactory.create(username="alice", email="alice@example.com", verified_email="alice@example.com")


@pytest.fixture
def unverified_bob(db: None) -> User:
    return UserFactory.create(username="bob", email="bob@example.com")
