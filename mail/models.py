"""The mail outbox: one row per event that owes somebody a message, written in the transaction of the event.

A row is the promise "this message will be sent"; its delivery (mail/services.py, `outbox_deliver`) is the
keeping of it. The database decides both halves: a unique constraint makes one event one row, and a guarded
UPDATE (a claim with a lease) lets exactly one worker send it at a time.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q


class MailEvent(models.TextChoices):
    """The `X-Shop-Event` header of every message; one template pair per event (templates/mail/)."""

    ORDER_PLACED = "order_placed", "Order placed"
    ORDER_PAID = "order_paid", "Order paid"
    PAYMENT_FAILED = "payment_failed", "Payment failed"
    ORDER_CANCELLED = "order_cancelled", "Order cancelled"
    ORDER_FULFILLED = "order_fulfilled", "Order fulfilled"
    PASSWORD_RESET = "password_reset", "Password reset"
    VERIFY_EMAIL = "verify_email", "Verify email"


ORDER_EVENTS = frozenset(
    {
        MailEvent.ORDER_PLACED,
        MailEvent.ORDER_PAID,
        MailEvent.PAYMENT_FAILED,
        MailEvent.ORDER_CANCELLED,
        MailEvent.ORDER_FULFILLED,
    }
)


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"  # waiting for an attempt at next_attempt_at
    SENDING = "sending", "Sending"  # claimed by one worker until claimed_until (its lease)
    SENT = "sent", "Sent"  # the SMTP server accepted it; never sent again
    FAILED = "failed", "Failed"  # given up: refused for good, or MAIL_MAX_ATTEMPTS used
    # The event no longer warrants the message (a reset link for an address the account no longer has):
    # decided at delivery, never sent.
    WITHDRAWN = "withdrawn", "Withdrawn"


UNSENT_STATUSES = [OutboxStatus.PENDING, OutboxStatus.SENDING, OutboxStatus.FAILED]


class OutboxMessage(models.Model):
    event = models.CharField(max_length=20, choices=MailEvent.choices)
    # Mail sent twice: what makes this event one event (order mail: "order:<id>"; account mail: see
    # mail/services.py). UNIQUE (event, event_key) below turns a second enqueue into the first row.
    event_key = models.CharField(max_length=200)
    # Resend after a crash: the Message-ID is derived from this, so a second delivery of the same row is the
    # same message to the receiver (and to our sink), not a new one. Random, so a reset database (pk 1 again)
    # can never collide with a message already in somebody's mailbox.
    message_uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    order = models.ForeignKey(
        "orders.Order", on_delete=models.PROTECT, null=True, blank=True, related_name="outbox_messages"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, null=True, blank=True, related_name="outbox_messages"
    )
    recipient = models.EmailField(max_length=254)
    # What the message says, frozen at the event (order lines, totals, the refund): a later edit of the order
    # does not rewrite the confirmation. Never a secret: links with tokens are made at delivery time.
    context = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=OutboxStatus.choices, default=OutboxStatus.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    claimed_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            # Mail sent twice: one event, one row, whoever enqueues it and however often.
            models.UniqueConstraint(fields=["event", "event_key"], name="mail_outbox_one_row_per_event"),
            models.UniqueConstraint(
                fields=["event", "order"], condition=Q(order__isnull=False), name="mail_outbox_one_row_per_order_event"
            ),
            models.CheckConstraint(
                condition=Q(event__in=[choice.value for choice in MailEvent]), name="mail_outbox_event_known"
            ),
            models.CheckConstraint(
                condition=Q(status__in=[choice.value for choice in OutboxStatus]), name="mail_outbox_status_known"
            ),
            # Order mail without its order cannot say which order it is about (X-Shop-Order).
            models.CheckConstraint(
                condition=~Q(event__in=sorted(ORDER_EVENTS)) | Q(order__isnull=False),
                name="mail_outbox_order_event_has_order",
            ),
            # A sent row says when; an unsent row cannot claim to be sent.
            models.CheckConstraint(
                condition=Q(status=OutboxStatus.SENT, sent_at__isnull=False)
                | (~Q(status=OutboxStatus.SENT) & Q(sent_at__isnull=True)),
                name="mail_outbox_sent_has_sent_at",
            ),
            # A claim always has a lease: a worker that dies mid-send cannot hold the row forever.
            models.CheckConstraint(
                condition=~Q(status=OutboxStatus.SENDING) | Q(claimed_until__isnull=False),
                name="mail_outbox_claim_has_lease",
            ),
        ]
        indexes = [
            # Re-drive, the gauges and the invariant read only the rows not sent, oldest first; sent rows (the
            # bulk, kept as the record of what was sent) stay out of this index.
            models.Index(
                fields=["created_at"],
                name="mail_outbox_unsent_by_age",
                condition=Q(status__in=UNSENT_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.event} to {self.recipient} ({self.status})"
