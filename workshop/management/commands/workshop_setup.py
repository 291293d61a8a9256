"""`make workshop` runs this: the capacity twin's database role (its CONNECTION LIMIT is the twin's whole share)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from workshop.services import runs_expire
from workshop.stack import twin_role_ensure


class Command(BaseCommand):
    help = "Set up the workshop: the capacity twin's database role; forget runs whose driver died."

    def handle(self, *args: Any, **options: Any) -> None:
        problem = twin_role_ensure(
            role=settings.WORKSHOP_TWIN_DB_USER, connection_limit=settings.WORKSHOP_TWIN_DB_CONNECTIONS
        )
        if problem:
            self.stderr.write(
                f"The capacity twin's role could not be set up; that twin will only answer 500s.\n{problem}"
            )
        else:
            self.stdout.write(
                f"capacity twin: role {settings.WORKSHOP_TWIN_DB_USER}, "
                f"CONNECTION LIMIT {settings.WORKSHOP_TWIN_DB_CONNECTIONS}, straight to PostgreSQL"
            )
        expired = runs_expire()
        if expired:
            self.stdout.write(f"{expired} run(s) whose driver had stopped are marked failed")
