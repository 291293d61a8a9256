"""SMTP, with a connect timeout and a send timeout. The only way the shop sends mail, in every mode.

Django's SMTP backend has one `timeout` for everything. Here the TCP connect, TLS handshake and login get
EMAIL_CONNECT_TIMEOUT_S (a dead or firewalled server is noticed in seconds), and every command after that
(MAIL FROM, RCPT TO, DATA) gets EMAIL_SEND_TIMEOUT_S. Both are checked at start-up to end well before the
task's soft time limit (mail/configuration.py), so a slow server defers the message instead of killing the task.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.mail.backends.smtp import EmailBackend


class SMTPBackend(EmailBackend):
    """Django's SMTP backend with separate connect and send timeouts (settings.EMAIL_BACKEND)."""

    def __init__(self, *, connect_timeout: float | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("timeout", settings.EMAIL_SEND_TIMEOUT_S)
        super().__init__(**kwargs)
        self.connect_timeout = connect_timeout if connect_timeout is not None else settings.EMAIL_CONNECT_TIMEOUT_S

    def open(self) -> bool | None:
        send_timeout = self.timeout
        # Hung worker: connecting (and STARTTLS, login) waits at most the connect timeout ...
        self.timeout = self.connect_timeout
        try:
            opened = super().open()
        finally:
            self.timeout = send_timeout
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            # ... and each command after it at most the send timeout.
            sock.settimeout(send_timeout)
        return opened


def smtp_connection() -> SMTPBackend:
    """An SMTP connection from the EMAIL_* settings that raises instead of failing silently.

    Built directly, never through `get_connection()`: a test runner (pytest-django) swaps EMAIL_BACKEND for an
    in-memory one, and then a test of "mail is sent" would prove nothing about SMTP.
    """
    return SMTPBackend(fail_silently=False)
