"""The few things the twins get from the lab around them, so the twin files read like the app a generator wrote.

- `quote_shipping`: the races twin's "carrier rate" call. It takes WORKSHOP_RACE_WINDOW_MS, which is what makes
  its read-then-write race show up every time (never luck): two requests a few milliseconds apart both read
  the stock before either writes it. A real app has such a window too (a template render, a tax service); the
  workshop only makes it long enough to be certain.
- `postgres_url`: "the database", as the capacity twin was told about it: straight to PostgreSQL, bypassing
  PgBouncer, as the workshop's twin role (its CONNECTION LIMIT keeps it from taking the real shop's share).
"""

from __future__ import annotations

import time
from typing import Any

import dj_database_url
from django.conf import settings


def quote_shipping(address: dict[str, Any]) -> dict[str, Any]:
    time.sleep(settings.WORKSHOP_RACE_WINDOW_MS / 1000)
    return {"carrier": "Parcel Co", "days": 2 if str(address.get("country", "")).upper() == "DE" else 4}


def postgres_url() -> str:
    direct = dj_database_url.parse(settings.DIRECT_DATABASE_URL)
    # The database the shop is using right now (a private run stack uses its own), reached directly on PostgreSQL.
    name = settings.DATABASES["default"]["NAME"]
    return f"postgresql://{settings.WORKSHOP_TWIN_DB_USER}@{direct['HOST']}:{direct['PORT']}/{name}"
