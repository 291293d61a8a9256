"""From an outbox row to the email the SMTP server receives: subject, plain text and HTML, and the headers.

Every message carries:
    Message-ID      derived from the row (its message_uuid): every delivery of one row is the same message
    X-Shop-Event    order_placed, order_paid, payment_failed, order_cancelled, order_fulfilled,
                    password_reset, verify_email
    X-Shop-Order    the order number (order mail only)
    Auto-Submitted  auto-generated (RFC 3834): vacation auto-replies do not answer it

Templates: templates/mail/messages/<event>.txt and <event>.html, both extending the shop's mail base.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from mail.models import ORDER_EVENTS, MailEvent, OutboxMessage

SUBJECTS: dict[str, str] = {
    MailEvent.ORDER_PLACED: "Order {order_number}: thank you, we have your order",
    MailEvent.ORDER_PAID: "Order {order_number}: payment received",
    MailEvent.PAYMENT_FAILED: "Order {order_number}: your payment did not go through",
    MailEvent.ORDER_CANCELLED: "Order {order_number} is cancelled",
    MailEvent.ORDER_FULFILLED: "Order {order_number} is on its way",
    MailEvent.PASSWORD_RESET: "Choose a new password for Hardened Shop",
    MailEvent.VERIFY_EMAIL: "Confirm your email address for Hardened Shop",
}


class MessageWithdrawn(Exception):
    """Raised by a delivery-context builder: this message must not go out any more (the row is withdrawn)."""


# Account mail carries a link with a token (a key to the account). It is made at delivery time by the app that
# owns the token, registered here (accounts/apps.py), so the outbox table never stores one.
DeliveryContext = Callable[[OutboxMessage], dict[str, Any]]
_delivery_context: dict[str, DeliveryContext] = {}


def register_delivery_context(event: MailEvent, builder: DeliveryContext) -> None:
    """Let the owner of an event add context at delivery time (links with fresh tokens)."""
    _delivery_context[event] = builder


def outbox_message_id(message: OutboxMessage) -> str:
    """The Message-ID of every delivery of this row. A resend after a crash is recognisably the same message."""
    return f"<{message.message_uuid}@{settings.MAIL_MESSAGE_ID_DOMAIN}>"


def absolute_url(path: str) -> str:
    return f"{settings.SHOP_BASE_URL.rstrip('/')}{path}"


def message_context(message: OutboxMessage) -> dict[str, Any]:
    context: dict[str, Any] = {
        **message.context,
        "event": message.event,
        "recipient": message.recipient,
        "shop_url": absolute_url("/"),
        "account_url": absolute_url("/accounts/account/"),
    }
    if message.context.get("order_path"):
        context["order_url"] = absolute_url(message.context["order_path"])
    builder = _delivery_context.get(message.event)
    if builder is not None:
        context.update(builder(message))
    elif message.event not in ORDER_EVENTS:
        raise LookupError(f"no delivery context registered for {message.event} (accounts/apps.py registers it)")
    return context


def build_email(message: OutboxMessage) -> EmailMultiAlternatives:
    """The message for one outbox row, with both parts and the shop's headers."""
    context = message_context(message)
    subject = SUBJECTS[message.event].format(order_number=context.get("order_number", ""))
    text = render_to_string(f"mail/messages/{message.event}.txt", context)
    html = render_to_string(f"mail/messages/{message.event}.html", context)
    headers = {
        # Resent after a crash: same row, same Message-ID (a named seam: tests/mail/naive_worker.py replaces it).
        "Message-ID": outbox_message_id(message),
        "X-Shop-Event": str(message.event),
        "Auto-Submitted": "auto-generated",
    }
    if message.event in ORDER_EVENTS:
        headers["X-Shop-Order"] = str(context["order_number"])
    email = EmailMultiAlternatives(
        subject=subject, body=text, from_email=settings.DEFAULT_FROM_EMAIL, to=[message.recipient], headers=headers
    )
    email.attach_alternative(html, "text/html")
    return email
