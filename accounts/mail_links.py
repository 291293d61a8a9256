"""The links in account mail, made when the message is delivered (registered in accounts/apps.py).

Made late on purpose: a token is a key to the account, and the outbox row that promised the message is kept
as a record; it must not hold one. Made late also means checked late: a reset link is withdrawn, not sent,
when the account no longer has the verified address the request was for.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timeuntil

from accounts.models import User
from accounts.tokens import email_verification_token, password_reset_tokens, user_uid
from mail.messages import MessageWithdrawn, absolute_url
from mail.models import OutboxMessage


def _valid_for(seconds: int) -> str:
    now = timezone.now()
    return timeuntil(now + timedelta(seconds=seconds), now)


def _account(message: OutboxMessage) -> User:
    user = User.objects.filter(pk=message.user_id, is_active=True).first() if message.user_id else None
    if user is None:
        raise MessageWithdrawn("the account is gone or inactive")
    return user


def password_reset_context(message: OutboxMessage) -> dict[str, Any]:
    user = _account(message)
    # Stale reset: the address changed (or lost its verification) since the request; the old inbox gets no key.
    if not user.is_email_verified or user.email.lower() != message.recipient.lower() or not user.has_usable_password():
        raise MessageWithdrawn("the account no longer has this verified address")
    uid, token = user_uid(user), password_reset_tokens.make_token(user)
    path = reverse("accounts:password-reset-confirm", kwargs={"uidb64": uid, "token": token})
    return {
        "username": user.username,
        "action_url": absolute_url(path),
        "uid": uid,
        "token": token,
        "valid_for": _valid_for(settings.PASSWORD_RESET_TIMEOUT),
    }


def verify_email_context(message: OutboxMessage) -> dict[str, Any]:
    user = _account(message)
    email = str(message.context.get("email") or message.recipient)
    if user.is_email_verified and user.email.lower() == email.lower():
        raise MessageWithdrawn("the address is confirmed already")
    token = email_verification_token(user=user, email=email)
    return {
        "username": user.username,
        "action_url": absolute_url(reverse("accounts:email-verify", kwargs={"token": token})),
        "token": token,
        "valid_for": _valid_for(settings.EMAIL_VERIFY_TIMEOUT_S),
    }
