"""Verified addresses: a confirmation mail at sign-up and on every change of address.

THE RULE for an account whose address is not verified (docs/patterns/04-authorization.md, "Verified addresses"):
- it may do everything a customer does: sign in, browse, keep a cart, place, pay, edit and cancel orders, and
  it gets the mail about its own orders (they are about what it just did);
- it gets no password-reset mail: a reset request for its address answers exactly like one for an unknown
  address and sends nothing, because a reset link hands the account to whoever reads that inbox, and a
  mistyped address is a stranger's inbox;
- its address is confirmed only from a session of that account (the link is opened signed in, or the API call
  carries the account's token): holding the inbox alone is not enough, so a stranger who receives the mail
  meant for someone else cannot confirm it and then reset the password.
A new address takes effect only once it is confirmed: until then the account keeps its old (verified) one, so
a session taken over without the password cannot redirect the account's mail.
"""

from __future__ import annotations

import structlog
from django.conf import settings
from django.db import transaction

from accounts.models import User
from accounts.passwords import PasswordRefused
from accounts.tokens import email_verification_claim
from core.errors import ApplicationError
from mail.models import MailEvent
from mail.services import Enqueued, account_mail_enqueue

logger = structlog.get_logger(__name__)


class InvalidVerificationLink(ApplicationError):
    code = "invalid_token"
    status = 400
    title = "This confirmation link is invalid or has expired."


def email_verification_enqueue(*, user: User, email: str) -> Enqueued:
    """Promise the mail that asks `email` to confirm itself for `user`. Call inside the caller's transaction."""
    # Mail bombing and double submits: one confirmation per account and address per ACCOUNT_MAIL_WINDOW_S.
    return account_mail_enqueue(
        event=MailEvent.VERIFY_EMAIL,
        user=user,
        recipient=email,
        window_s=settings.ACCOUNT_MAIL_WINDOW_S,
        context={"email": email},
    )


def email_verification_resend(*, user: User) -> bool:
    """Send the confirmation for the current address again. False (nothing sent) when it is verified already."""
    if user.is_email_verified or not user.email:
        return False
    with transaction.atomic(durable=True):
        email_verification_enqueue(user=user, email=user.email)
    return True


def email_change_request(*, user: User, new_email: str, password: str) -> bool:
    """Ask to move the account to `new_email`: a confirmation goes there, the address changes when it is used.

    Needs the password: a session alone (left open, or stolen) cannot redirect the account's mail.
    Returns False when there is nothing to confirm (the address is already the account's, verified).
    """
    if not user.check_password(password):
        raise PasswordRefused(
            "The password is not right.",
            code="wrong_password",
            extra={"errors": {"password": ["This is not your password."]}},
        )
    new_email = User.objects.normalize_email(new_email.strip())
    if new_email.lower() == user.email.lower() and user.is_email_verified:
        return False
    with transaction.atomic(durable=True):
        email_verification_enqueue(user=user, email=new_email)
    logger.info("address change requested", user_id=user.pk)
    return True


def email_verify_confirm(*, user: User, token: str) -> User:
    """Confirm an address from its link, for the signed-in `user`. The link works once, for its own account."""
    claim = email_verification_claim(token)
    if claim is None:
        raise InvalidVerificationLink("This confirmation link is not valid, or it has expired: ask for a new one.")
    if claim.user_id != user.pk:
        # Unproven owner: holding the inbox is not enough, the account's own session must confirm.
        raise InvalidVerificationLink(
            "This confirmation link is for another account. Log out, then log in to the account it was sent for.",
            code="wrong_account",
        )
    with transaction.atomic(durable=True):
        locked = User.objects.select_for_update(of=("self",)).get(pk=user.pk)
        # Single use, and no undoing a newer change: the link is valid only for the address state it was made in.
        if not claim.is_current_for(locked):
            raise InvalidVerificationLink("This confirmation link was used already or a newer one replaced it.")
        locked.email = claim.email
        locked.verified_email = claim.email
        locked.save(update_fields=["email", "verified_email"])
    logger.info("address verified", user_id=locked.pk)
    return locked
