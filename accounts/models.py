from django.contrib.auth.models import AbstractUser


class User(AbstractUser):
    """The shop's user, a custom model from the first migration so it can grow without a painful swap."""

    class Meta:
        db_table = "accounts_user"
