"""Idempotency-Key handling (IETF httpapi Idempotency-Key draft), for any POST that creates something.

How a key lives: the first request claims it with a unique INSERT of (user, key, fingerprint) in state
`in_flight`; a repeat that arrives meanwhile gets 409 `request_in_flight` with Retry-After; the first
request then either completes the key (its response is stored) or releases it (the row is deleted).

Which outcomes are stored and replayed, and why:
- Success (2xx) is stored as the exact bytes sent, and replayed byte for byte with `Idempotent-Replayed:
  true`. The order exists, so every retry of the same request must land on it, never on a second one.
- Refusals (4xx: invalid lines, unknown product, insufficient stock) are not stored: the key is released.
  A refused request wrote nothing, so there is nothing to protect; the client may send the same key again
  once the cause is fixed (stock replenished, a typo corrected) and gets a fresh attempt, instead of a
  replay of a refusal that is no longer true.
- Transient failures (lock timeout 409 busy, 503, a crash) are not stored either, for the same reason: the
  transaction rolled back, and a retry with the same key should simply try again.
- 409 `request_in_flight` and 422 `idempotency_key_reused` are answers about the key itself; they never
  touch the stored record.
- A request that dies without releasing its key (worker killed) leaves it `in_flight`; after
  IDEMPOTENCY_IN_FLIGHT_LEASE_S a retry takes it over. If the dead request had committed its order, the
  order's own unique (customer, idempotency_key) constraint makes the retry land on that order.
Keys are kept IDEMPOTENCY_KEY_RETENTION_HOURS (at least 24) and purged by a periodic task (idempotency/tasks.py).
A purged key is not forgotten for orders: the order keeps the request's fingerprint
(`Order.request_fingerprint`, checked by `orders.services.order_for_key`), so after the purge a different
request under the same key is still 422 `idempotency_key_reused`, and the same request is a replay of the order
(`Idempotent-Replayed: true`), never a silent 201.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from accounts.models import User
from core.errors import ApplicationError
from core.metrics import record_idempotency_conflict, record_idempotent_replay
from idempotency.models import IdempotencyKey, IdempotencyKeyStatus

logger = structlog.get_logger(__name__)

MAX_KEY_LENGTH = 255


class IdempotencyKeyMissing(ApplicationError):
    code = "idempotency_key_missing"
    status = 400
    title = "Idempotency-Key header required."


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    status = 422
    title = "This Idempotency-Key was already used for a different request."


class RequestInFlight(ApplicationError):
    code = "request_in_flight"
    status = 409
    title = "A request with this Idempotency-Key is still being processed."


@dataclass(frozen=True)
class IdempotencyClaim:
    record: IdempotencyKey
    is_replay: bool


def check_idempotency_key(raw: str | None) -> str:
    if raw is None or raw.strip() == "":
        raise IdempotencyKeyMissing("Send an Idempotency-Key header (1-255 characters) with this request.")
    key = raw.strip()
    if len(key) > MAX_KEY_LENGTH:
        raise IdempotencyKeyMissing(
            f"Idempotency-Key is {len(key)} characters; the limit is {MAX_KEY_LENGTH}.",
            code="idempotency_key_invalid",
        )
    return key


def request_fingerprint(*, method: str, path: str, payload: Any) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


def idempotency_claim(*, user: User, key: str, fingerprint: str) -> IdempotencyClaim:
    """Claim `key` for this request, or say how to answer a repeat of it."""
    for _ in range(3):
        now = timezone.now()
        try:
            # Double submit: the key is claimed by a unique insert, not by a read-then-write.
            with transaction.atomic():
                record = IdempotencyKey.objects.create(user=user, key=key, fingerprint=fingerprint, locked_at=now)
            return IdempotencyClaim(record=record, is_replay=False)
        except IntegrityError:
            pass
        record_or_none = IdempotencyKey.objects.filter(user=user, key=key).first()
        if record_or_none is None:
            continue  # released between our insert and our read; claim again
        record = record_or_none
        if record.fingerprint != fingerprint:
            record_idempotency_conflict("reused")
            raise IdempotencyKeyReused(
                "This Idempotency-Key was used with a different payload. Use a new key for a new request."
            )
        if record.status == IdempotencyKeyStatus.COMPLETED:
            record_idempotent_replay()
            return IdempotencyClaim(record=record, is_replay=True)
        lease_expired = record.locked_at < now - timedelta(seconds=settings.IDEMPOTENCY_IN_FLIGHT_LEASE_S)
        if lease_expired:
            # Crashed worker: its claim is taken over by a guarded update, so only one retry wins it.
            taken = IdempotencyKey.objects.filter(
                pk=record.pk, status=IdempotencyKeyStatus.IN_FLIGHT, locked_at=record.locked_at
            ).update(locked_at=now)
            if taken:
                record.locked_at = now
                return IdempotencyClaim(record=record, is_replay=False)
        record_idempotency_conflict("in_flight")
        raise RequestInFlight("The first request with this key is still running. Retry shortly.", retry_after=1)
    record_idempotency_conflict("in_flight")
    raise RequestInFlight("The key is being claimed and released concurrently. Retry shortly.", retry_after=1)


def idempotency_complete(*, record: IdempotencyKey, status: int, body: str, headers: dict[str, str]) -> None:
    """Store the response the first request produced, so every repeat gets exactly these bytes."""
    # Replay drift: only the first completion is stored; a lease-takeover twin cannot overwrite it.
    IdempotencyKey.objects.filter(pk=record.pk, status=IdempotencyKeyStatus.IN_FLIGHT).update(
        status=IdempotencyKeyStatus.COMPLETED,
        response_status=status,
        response_body=body,
        response_headers=headers,
        completed_at=timezone.now(),
    )


def idempotency_release(*, record: IdempotencyKey) -> None:
    """Give the key back after a refusal: nothing was written, so the same key may try again.

    Never raises: it runs while another error is on its way out, and must not replace that error. A key that
    could not be released (database down) frees itself when its in-flight lease runs out.
    """
    try:
        # Stale holder: only the claim we hold is deleted, not one a retry took over after our lease ran out.
        IdempotencyKey.objects.filter(
            pk=record.pk, status=IdempotencyKeyStatus.IN_FLIGHT, locked_at=record.locked_at
        ).delete()
    except DatabaseError:
        logger.warning("could not release idempotency key", key_id=record.pk, exc_info=True)


def idempotency_purge_expired(*, now: datetime | None = None, batch_size: int = 5000) -> int:
    """Delete keys older than the retention window (as of `now`). Returns how many were deleted."""
    cutoff = (now or timezone.now()) - timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS)
    purged = 0
    while True:
        # Long statement: a backlog is deleted in small batches, each well inside statement_timeout.
        batch = list(
            IdempotencyKey.objects.filter(created_at__lt=cutoff)
            .order_by("pk")
            .values_list("pk", flat=True)[:batch_size]
        )
        if not batch:
            return purged
        deleted, _ = IdempotencyKey.objects.filter(pk__in=batch).delete()
        purged += deleted
