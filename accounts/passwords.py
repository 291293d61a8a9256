"""Password reset and password change. Each public function owns one durable transaction.

Both end in `user_password_set`: the new password is validated, set on the locked row, and every refresh token
of the account is blacklisted in the same transaction. Every session elsewhere ends as well: Django keeps a hash
of the password in each session and refuses a session whose hash no longer matches (the web view that changed
the password keeps its own with `update_session_auth_hash`), and every JWT carries the same kind of hash
(SIMPLE_JWT CHECK_REVOKE_TOKEN), so even a five-minute access token dies at once.

The reset mail goes only to an address the account has verified (accounts/verification.py says why); the
answer to a reset request is the same whatever the address, so nobody learns who has an account.
"""

from __future__ import annotations

import structlog
from axes.utils import reset as axes_reset
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import User
from accounts.tokens import password_reset_tokens
from core.errors import ApplicationError
from mail.models import MailEvent
from mail.services import account_mail_enqueue

logger = structlog.get_logger(__name__)


class PasswordRefused(ApplicationError):
    code = "invalid"
    status = 400
    title = "Password refused."


class InvalidResetLink(ApplicationError):
    code = "invalid_token"
    status = 400
    title = "This password reset link is invalid or has expired."


def password_reset_request(*, email: str) -> int:
    """Promise a reset mail to each active account whose verified address is `email`. Returns how many.

    The caller answers the same (202, the same page) whatever this returns: account enumeration.
    """
    accounts = list(
        User.objects.filter(is_active=True, email__iexact=email, verified_email__iexact=email).only(
            "id", "username", "email", "password", "verified_email"
        )
    )
    with transaction.atomic(durable=True):
        for user in accounts:
            if not user.has_usable_password():
                continue  # an account without a password (created by staff, say) has nothing to reset
            # Mail bombing and double submits: one reset mail per account per ACCOUNT_MAIL_WINDOW_S.
            account_mail_enqueue(
                event=MailEvent.PASSWORD_RESET,
                user=user,
                recipient=user.email,
                window_s=settings.ACCOUNT_MAIL_WINDOW_S,
            )
    logger.info("password reset requested", accounts=len(accounts))
    return len(accounts)


def _check_new_password(*, user: User, new_password: str) -> None:
    try:
        validate_password(new_password, user=user)
    except DjangoValidationError as error:
        raise PasswordRefused(
            "The new password is refused; see errors.", extra={"errors": {"new_password": list(error.messages)}}
        ) from None


def _revoke_refresh_tokens(user: User) -> int:
    """Blacklist every refresh token of the account that has not expired (simplejwt's blacklist app)."""
    outstanding = OutstandingToken.objects.filter(user=user, expires_at__gt=timezone.now()).exclude(
        blacklistedtoken__isnull=False
    )
    # A token blacklisted by a concurrent logout is already dead: ignore_conflicts on its one-to-one row.
    created = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding.only("id")], ignore_conflicts=True
    )
    return len(created)


def do_user_password_set(*, user: User, new_password: str) -> User:
    """Set the password on the locked row and revoke the account's tokens. Call inside the caller's transaction."""
    assert transaction.get_connection().in_atomic_block, "do_user_password_set needs the caller's transaction"
    user.set_password(new_password)
    user.save(update_fields=["password"])
    revoked = _revoke_refresh_tokens(user)
    logger.info("password set", user_id=user.pk, refresh_tokens_revoked=revoked)
    return user


def password_reset_confirm(*, user: User, token: str, new_password: str) -> User:
    """Set a new password from a reset link. The link works once: its token is re-checked under the row lock."""
    if not password_reset_tokens.check_token(user, token):
        raise InvalidResetLink("This password reset link was used already, has expired or is not valid.")
    _check_new_password(user=user, new_password=new_password)
    with transaction.atomic(durable=True):
        locked = User.objects.select_for_update(of=("self",)).get(pk=user.pk)
        # Single use, even for two clicks at once: the second one waits for the lock, then finds the password
        # hash changed, which is what the token was made from.
        if not locked.is_active or not password_reset_tokens.check_token(locked, token):
            raise InvalidResetLink("This password reset link was used already, has expired or is not valid.")
        do_user_password_set(user=locked, new_password=new_password)
    # Locked out by guessing: whoever proved they read the account's inbox may log in again straight away.
    axes_reset(username=locked.username)
    return locked


def password_change(*, user: User, current_password: str, new_password: str) -> User:
    """Change the password of a signed-in user, who must know the current one (a stolen session is not enough)."""
    if not user.check_password(current_password):
        raise PasswordRefused(
            "The current password is not right.",
            code="wrong_password",
            extra={"errors": {"current_password": ["This is not your current password."]}},
        )
    _check_new_password(user=user, new_password=new_password)
    with transaction.atomic(durable=True):
        locked = User.objects.select_for_update(of=("self",)).get(pk=user.pk)
        return do_user_password_set(user=locked, new_password=new_password)
