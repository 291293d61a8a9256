"""A dead mail server and a dead broker fail no request: the shop under gunicorn (a real request lifecycle) signs
customers up and answers reset requests while nothing can take or send their mail; the rows wait for the
re-drive. (That a worker then defers, backs off and sends later is in test_delivery.py.)"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.conf import settings

from accounts.models import User
from mail.models import OutboxMessage, OutboxStatus
from tests.capacity.infra import AppServer, free_port
from tests.factories import UserFactory

pytestmark = [pytest.mark.faults, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def shop_without_mail() -> Iterator[AppServer]:
    database = settings.DATABASES["default"]
    server = AppServer(
        env={
            "DATABASE_URL": f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/{database['NAME']}",
            "REDIS_URL": settings.REDIS_URL,  # cache and throttles work ...
            "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # ... the broker is gone
            "EMAIL_HOST": "127.0.0.1",
            "EMAIL_PORT": str(free_port()),  # and so is the mail server
        }
    )
    yield server
    server.stop()


def test_sign_up_and_reset_requests_succeed_and_their_mail_waits(shop_without_mail: AppServer) -> None:
    UserFactory.create(username="alice", email="alice@example.com", verified_email="alice@example.com")
    http = shop_without_mail.client()

    signed_up = http.post(
        "/api/v1/auth/register/",
        json={"username": "newcomer", "email": "newcomer@example.com", "password": "Sturdy-pass-42"},
    )
    reset = http.post("/api/v1/auth/password-reset/", json={"email": "alice@example.com"})

    assert signed_up.status_code == 201, shop_without_mail.log()
    assert reset.status_code == 202, shop_without_mail.log()
    assert User.objects.filter(username="newcomer").exists()
    rows = {row.event: row for row in OutboxMessage.objects.all()}
    assert set(rows) == {"verify_email", "password_reset"}
    # Nothing was sent and nothing was lost: both rows wait, untried, for the re-drive job.
    assert all((row.status, row.attempts) == (OutboxStatus.PENDING, 0) for row in rows.values())
