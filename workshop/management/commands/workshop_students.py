"""A room of students: one staff account each (the teacher page is staff-only), so each has their own seat.

    python manage.py workshop_students --count 20          # student01 .. student20, passwords printed once

A student account is staff but holds no permission: the admin shows it nothing, the back office grants nothing;
on /workshop/ its runs, accounts, products and scorecards are its own (seat u<id>).
"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from accounts.models import User
from workshop.tags import seat_for_user


class Command(BaseCommand):
    help = "Create (or reset the passwords of) student accounts for a workshop room."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=20)
        parser.add_argument("--prefix", default="student")
        parser.add_argument("--password", help="one password for all (default: a random one each)")

    def handle(self, *args: Any, **options: Any) -> None:
        for number in range(1, options["count"] + 1):
            username = f"{options['prefix']}{number:02d}"
            password = options["password"] or secrets.token_urlsafe(9)
            user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@workshop.example"})
            user.is_staff = True
            user.set_password(password)
            user.save(update_fields=["is_staff", "password"])
            self.stdout.write(f"{username:<12} {password:<16} seat {seat_for_user(user.pk)}")
