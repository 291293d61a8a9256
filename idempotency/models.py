from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class IdempotencyKeyStatus(models.TextChoices):
    IN_FLIGHT = "in_flight", "In flight"
    COMPLETED = "completed", "Completed"


class IdempotencyKey(models.Model):
    """A client's Idempotency-Key, claimed by a unique insert and kept with the response it produced."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    # Reused key: the fingerprint of the first request; a different payload under the same key is refused.
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(
        max_length=20, choices=IdempotencyKeyStatus.choices, default=IdempotencyKeyStatus.IN_FLIGHT
    )
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    # Stored as the exact bytes sent the first time, so a replay is byte-identical (jsonb would reorder keys).
    response_body = models.TextField(blank=True)
    response_headers = models.JSONField(default=dict, blank=True)
    locked_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            # Double submit: the claim is this unique insert, never a read-then-write.
            models.UniqueConstraint(fields=["user", "key"], name="idempotency_key_unique_per_user"),
            models.CheckConstraint(
                condition=Q(status__in=[choice.value for choice in IdempotencyKeyStatus]),
                name="idempotency_key_status_known",
            ),
            # Empty replay: a completed key always holds the response it replays; an in-flight key holds none.
            models.CheckConstraint(
                condition=Q(status=IdempotencyKeyStatus.COMPLETED, response_status__isnull=False)
                | Q(status=IdempotencyKeyStatus.IN_FLIGHT, response_status__isnull=True),
                name="idempotency_key_completed_has_response",
            ),
        ]
        indexes = [models.Index(fields=["created_at"], name="idempotency_key_by_age")]

    def __str__(self) -> str:
        return f"{self.user_id}:{self.key} ({self.status})"
