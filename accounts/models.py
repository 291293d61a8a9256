from django.contrib.auth.models import AbstractUser
from django.db import models


class User(AbstractUser):
    """The shop's user, a custom model from the first migration so it can grow without a painful swap."""

    # Unproven address: the address this account proved it reads (accounts/verification.py). Kept as the
    # address itself, not a flag, so any change of `email` (the account page, the admin, a shell) makes the
    # account unverified again until the new address is confirmed.
    verified_email = models.EmailField(max_length=254, blank=True)

    class Meta:
        db_table = "accounts_user"

    @property
    def is_email_verified(self) -> bool:
        return bool(self.email) and self.verified_email.lower() == self.email.lower()
