"""Expired JWTs are flushed on a schedule: simplejwt's flushexpiredtokens, run hourly by Celery beat."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.models import User
from accounts.tasks import tokens_flush_expired_task
from config.celery import app

pytestmark = pytest.mark.django_db


def test_the_flush_deletes_expired_tokens_and_their_blacklist_rows_and_keeps_live_ones(alice: User) -> None:
    live = RefreshToken.for_user(alice)
    expired = RefreshToken.for_user(alice)
    expired.blacklist()
    OutstandingToken.objects.filter(jti=expired["jti"]).update(expires_at=timezone.now() - timedelta(seconds=1))

    tokens_flush_expired_task()

    assert list(OutstandingToken.objects.values_list("jti", flat=True)) == [live["jti"]]
    assert not BlacklistedToken.objects.exists()
    tokens_flush_expired_task()  # idempotent: nothing left to flush, nothing else touched
    assert OutstandingToken.objects.count() == 1


def test_beat_runs_the_flush_every_hour() -> None:
    entry = app.conf.beat_schedule["tokens-flush-expired"]
    assert entry["task"] == "accounts.tasks.tokens_flush_expired_task"
    assert entry["schedule"] == 3600.0
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks  # the name beat sends is a task a worker knows
