"""The Idempotency-Key claim, one rule per test: unique-insert claim, replay, reuse, in-flight, lease, release."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from idempotency.models import IdempotencyKey, IdempotencyKeyStatus
from idempotency.services import (
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    RequestInFlight,
    check_idempotency_key,
    idempotency_claim,
    idempotency_complete,
    idempotency_purge_expired,
    idempotency_release,
    request_fingerprint,
)

pytestmark = pytest.mark.django_db

BODY = '{"id":1}'


def complete(record: IdempotencyKey, body: str = BODY) -> None:
    idempotency_complete(record=record, status=201, body=body, headers={"ETag": '"1"'})


def test_first_claim_inserts_an_in_flight_key(alice: User) -> None:
    claim = idempotency_claim(user=alice, key="k", fingerprint="f")
    assert not claim.is_replay
    stored = IdempotencyKey.objects.get()
    assert (stored.user, stored.key, stored.fingerprint, stored.status) == (alice, "k", "f", "in_flight")


def test_repeat_while_the_first_is_running_is_409_with_retry_after(alice: User) -> None:
    idempotency_claim(user=alice, key="k", fingerprint="f")
    with pytest.raises(RequestInFlight) as refused:
        idempotency_claim(user=alice, key="k", fingerprint="f")
    assert (refused.value.status, refused.value.code, refused.value.retry_after) == (409, "request_in_flight", 1)
    assert IdempotencyKey.objects.count() == 1


@pytest.mark.parametrize("first_finished", [False, True])
def test_same_key_with_a_different_payload_is_422(alice: User, first_finished: bool) -> None:
    first = idempotency_claim(user=alice, key="k", fingerprint="f")
    if first_finished:
        complete(first.record)
    with pytest.raises(IdempotencyKeyReused) as refused:
        idempotency_claim(user=alice, key="k", fingerprint="other")
    assert (refused.value.status, refused.value.code) == (422, "idempotency_key_reused")


def test_a_completed_key_is_replayed_with_the_stored_bytes(alice: User) -> None:
    complete(idempotency_claim(user=alice, key="k", fingerprint="f").record, body='{"b":1,"a":2}')
    again = idempotency_claim(user=alice, key="k", fingerprint="f")
    assert again.is_replay
    assert again.record.response_body == '{"b":1,"a":2}'  # text, not jsonb: the key order survives
    assert (again.record.response_status, again.record.response_headers) == (201, {"ETag": '"1"'})


def test_keys_are_scoped_per_user(alice: User, bob: User) -> None:
    idempotency_claim(user=alice, key="k", fingerprint="f")
    assert not idempotency_claim(user=bob, key="k", fingerprint="other").is_replay
    assert IdempotencyKey.objects.count() == 2


def test_a_released_key_can_be_claimed_again(alice: User) -> None:
    idempotency_release(record=idempotency_claim(user=alice, key="k", fingerprint="f").record)
    assert IdempotencyKey.objects.count() == 0
    assert not idempotency_claim(user=alice, key="k", fingerprint="corrected payload").is_replay


def test_an_expired_lease_is_taken_over_by_exactly_one_retry(alice: User, settings: Any) -> None:
    crashed = idempotency_claim(user=alice, key="k", fingerprint="f").record
    long_ago = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_LEASE_S + 1)
    IdempotencyKey.objects.filter(pk=crashed.pk).update(locked_at=long_ago)

    retry = idempotency_claim(user=alice, key="k", fingerprint="f")
    assert not retry.is_replay
    assert retry.record.pk == crashed.pk
    with pytest.raises(RequestInFlight):
        idempotency_claim(user=alice, key="k", fingerprint="f")  # the retry now holds a fresh lease


def test_a_stale_holder_cannot_release_a_claim_a_retry_took_over(alice: User, settings: Any) -> None:
    stale = idempotency_claim(user=alice, key="k", fingerprint="f").record
    long_ago = timezone.now() - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_LEASE_S + 1)
    IdempotencyKey.objects.filter(pk=stale.pk).update(locked_at=long_ago)
    stale.locked_at = long_ago
    taken_over = idempotency_claim(user=alice, key="k", fingerprint="f").record

    idempotency_release(record=stale)  # the slow first request finally gives up

    assert IdempotencyKey.objects.filter(pk=taken_over.pk, status="in_flight").exists()


def test_only_the_first_completion_is_stored(alice: User) -> None:
    record = idempotency_claim(user=alice, key="k", fingerprint="f").record
    complete(record, body='{"first":true}')
    complete(record, body='{"second":true}')
    assert IdempotencyKey.objects.get().response_body == '{"first":true}'


def test_release_never_raises_so_the_original_error_reaches_the_client(
    alice: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = idempotency_claim(user=alice, key="k", fingerprint="f").record

    def database_gone(*args: Any, **kwargs: Any) -> None:
        raise DatabaseError("injected: connection lost")

    monkeypatch.setattr(IdempotencyKey.objects, "filter", database_gone)
    idempotency_release(record=record)  # logs, does not raise; the lease frees the key later


def test_the_database_refuses_a_completed_key_without_a_response(alice: User) -> None:
    record = idempotency_claim(user=alice, key="k", fingerprint="f").record
    with pytest.raises(IntegrityError), transaction.atomic():
        IdempotencyKey.objects.filter(pk=record.pk).update(status=IdempotencyKeyStatus.COMPLETED)


def test_purge_deletes_only_keys_older_than_the_retention(alice: User, settings: Any) -> None:
    old = idempotency_claim(user=alice, key="old", fingerprint="f").record
    idempotency_claim(user=alice, key="new", fingerprint="f")
    expired = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS, minutes=1)
    IdempotencyKey.objects.filter(pk=old.pk).update(created_at=expired)

    assert idempotency_purge_expired() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["new"]


def test_purge_works_through_a_backlog_in_batches(alice: User, settings: Any) -> None:
    for key in ("a", "b", "c"):
        idempotency_claim(user=alice, key=key, fingerprint="f")
    expired = timezone.now() - timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS, minutes=1)
    IdempotencyKey.objects.update(created_at=expired)

    assert idempotency_purge_expired(batch_size=2) == 3
    assert not IdempotencyKey.objects.exists()


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_a_missing_key_is_refused(raw: str | None) -> None:
    with pytest.raises(IdempotencyKeyMissing) as refused:
        check_idempotency_key(raw)
    assert (refused.value.status, refused.value.code) == (400, "idempotency_key_missing")


def test_a_key_longer_than_255_characters_is_refused() -> None:
    assert check_idempotency_key("k" * 255) == "k" * 255
    with pytest.raises(IdempotencyKeyMissing) as refused:
        check_idempotency_key("k" * 256)
    assert (refused.value.status, refused.value.code) == (400, "idempotency_key_invalid")


def test_the_fingerprint_ignores_json_key_order_but_not_values() -> None:
    one = request_fingerprint(method="POST", path="/api/v1/orders/", payload={"a": 1, "b": [1, 2]})
    same = request_fingerprint(method="POST", path="/api/v1/orders/", payload={"b": [1, 2], "a": 1})
    other = request_fingerprint(method="POST", path="/api/v1/orders/", payload={"a": 1, "b": [2, 1]})
    assert one == same != other
