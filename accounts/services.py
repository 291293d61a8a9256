from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction

from accounts.models import User
from accounts.verification import email_verification_enqueue
from core.errors import ApplicationError


class RegistrationRefused(ApplicationError):
    code = "invalid"
    status = 400
    title = "Registration refused."


def username_taken(username: str) -> bool:
    """The friendly pre-check ("Alice" is taken when "alice" exists). It only gives the good message: two
    sign-ups racing for one name both pass it, and the unique index on LOWER(username) decides."""
    return User.objects.filter(username__iexact=username).exists()


def user_register(*, username: str, email: str, password: str) -> User:
    errors: dict[str, list[str]] = {}
    candidate = User(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except DjangoValidationError as error:
        errors["password"] = list(error.messages)
    if username_taken(username):
        errors["username"] = ["This username is taken."]
    if errors:
        raise RegistrationRefused("Registration refused; see errors.", extra={"errors": errors})
    try:
        with transaction.atomic(durable=True):
            # Double submit / look-alike race: the unique index on LOWER(username) decides between two
            # simultaneous sign-ups of "Alice" and "alice"; the loser gets the same message as the pre-check.
            user = User.objects.create_user(username=username, email=email, password=password)
            # The confirmation mail is promised in the account's own transaction (accounts/verification.py).
            email_verification_enqueue(user=user, email=user.email)
            return user
    except IntegrityError:
        raise RegistrationRefused(
            "Registration refused; see errors.", extra={"errors": {"username": ["This username is taken."]}}
        ) from None
