from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models.functions import Lower

USERNAME_CI_UNIQUE = "accounts_user_username_lower_unique"
USERNAME_MAX_LENGTH = 150  # AbstractUser's column; the login forms and the token endpoint check it first
# Resource exhaustion: the password hasher works on whatever it is given; nobody's password is this long.
PASSWORD_MAX_LENGTH = 4096
NEW_PASSWORD_MAX_LENGTH = 128  # what sign-up (web and API) accepts for a new password


class User(AbstractUser):
    """The shop's user, a custom model from the first migration so it can grow without a painful swap."""

    # Unproven address: the address this account proved it reads (accounts/verification.py). Kept as the
    # address itself, not a flag, so any change of `email` (the account page, the admin, a shell) makes the
    # account unverified again until the new address is confirmed.
    verified_email = models.EmailField(max_length=254, blank=True)

    class Meta:
        db_table = "accounts_user"
        constraints = [
            # Look-alike accounts: "Alice" and "alice" are one name. Two sign-ups racing for it both pass any
            # Python check; this unique index on LOWER(username) lets exactly one of them commit.
            models.UniqueConstraint(
                Lower("username"), name=USERNAME_CI_UNIQUE, violation_error_message="This username is taken."
            ),
        ]

    @property
    def is_email_verified(self) -> bool:
        return bool(self.email) and self.verified_email.lower() == self.email.lower()
