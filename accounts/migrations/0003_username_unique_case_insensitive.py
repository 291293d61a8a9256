"""Usernames unique case-insensitively, in the database (UNIQUE index on LOWER(username)).

Existing data: accounts that differ only in case ("Alice", "alice") would stop the index from being built.
The oldest account of each such group keeps its name; every later one is renamed to "<name>-<id>" (cut to
fit 150 characters) and listed on stdout, so the operator can tell those users. Nothing is deleted.
"""

from django.db import migrations, models
from django.db.models import Count
from django.db.models.functions import Lower

MAX_LENGTH = 150


def rename_case_insensitive_duplicates(apps, schema_editor):
    User = apps.get_model("accounts", "User")
    clashes = (
        User.objects.annotate(folded=Lower("username"))
        .values("folded")
        .annotate(accounts=Count("id"))
        .filter(accounts__gt=1)
        .values_list("folded", flat=True)
    )
    for folded in list(clashes):
        group = User.objects.annotate(folded=Lower("username")).filter(folded=folded).order_by("date_joined", "id")
        for user in list(group)[1:]:
            renamed, attempt = "", 0
            while not renamed or User.objects.filter(username__iexact=renamed).exists():
                suffix = f"-{user.pk}" + (f"-{attempt}" if attempt else "")
                renamed, attempt = f"{user.username[: MAX_LENGTH - len(suffix)]}{suffix}", attempt + 1
            print(f"\n  accounts: username {user.username!r} clashes with an older account; renamed to {renamed!r}")
            user.username = renamed
            user.save(update_fields=["username"])


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_user_verified_email"),
    ]

    operations = [
        migrations.RunPython(rename_case_insensitive_duplicates, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                Lower("username"),
                name="accounts_user_username_lower_unique",
                violation_error_message="This username is taken.",
            ),
        ),
    ]
