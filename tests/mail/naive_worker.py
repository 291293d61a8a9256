"""ANTI-PATTERN, on purpose: a Celery worker whose every delivery attempt gets a brand-new Message-ID.

Used only by the twin in tests/mail/test_worker.py (`celery -A tests.mail.naive_worker worker`), to show what
the derived Message-ID prevents: after a crash between "accepted" and "marked sent", the resend is a second,
different message that no receiver can recognise as the same one. Never imported by the shop.
"""

from __future__ import annotations

from email.utils import make_msgid
from typing import Any

from celery.signals import worker_process_init

from config.celery import app

__all__ = ["app"]


@worker_process_init.connect
def _a_new_message_id_for_every_attempt(**kwargs: Any) -> None:
    # Imported here: the pool child runs this after Django is set up, when the mail app can be imported.
    from mail import messages

    # The named seam mail/messages.py documents: build_email() looks outbox_message_id up at call time.
    messages.outbox_message_id = lambda message: make_msgid(domain="hardened-shop.local")  # type: ignore[assignment]
