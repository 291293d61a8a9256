"""The local SMTP sink (mail/sink.py) and the development page that lists what it received (/dev/mail/).

The sink is spoken to with smtplib, the way any SMTP client would; the page is 404 in production and for a
browser that is not on this machine.
"""

from __future__ import annotations

import smtplib
import socket
import threading
from email.message import EmailMessage
from typing import Any

import pytest
from django.test import Client

from mail.mailbox import message_file_name
from mail.transport import SMTPBackend
from tests.mail.conftest import SmtpSink


def _message(subject: str, message_id: str | None = "<one@hardened-shop.local>") -> EmailMessage:
    message = EmailMessage()
    message["From"] = "shop@hardened-shop.local"
    message["To"] = "alice@example.com"
    message["Subject"] = subject
    message["X-Shop-Event"] = "order_paid"
    message["X-Shop-Order"] = "SO-000042"
    if message_id:
        message["Message-ID"] = message_id
    message.set_content("Plain text body")
    message.add_alternative("<p>HTML <b>body</b></p>", subtype="html")
    return message


def _send(sink: SmtpSink, message: EmailMessage) -> None:
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=10) as smtp:
        smtp.send_message(message)


def test_the_sink_keeps_each_message_as_an_eml_file_named_by_its_message_id(smtp_sink: SmtpSink) -> None:
    _send(smtp_sink, _message("Receipt"))

    (stored,) = smtp_sink.messages()
    assert stored.name == message_file_name("<one@hardened-shop.local>")
    assert (smtp_sink.directory / stored.name).read_bytes().startswith(b"X-Sink-Envelope-From: ")
    full = smtp_sink.message(stored.name)
    assert (full.subject, full.event, full.order, full.to) == (
        "Receipt",
        "order_paid",
        "SO-000042",
        "alice@example.com",
    )
    assert full.text.strip() == "Plain text body"
    assert "<b>body</b>" in full.html


def test_a_second_delivery_of_the_same_message_id_is_recognised_and_kept_once(smtp_sink: SmtpSink) -> None:
    _send(smtp_sink, _message("Receipt"))
    _send(smtp_sink, _message("Receipt"))  # a resend after a crash
    _send(smtp_sink, _message("Other", message_id="<two@hardened-shop.local>"))

    assert [entry["duplicate"] for entry in smtp_sink.deliveries()] == [False, True, False]
    by_subject = {message.subject: message.deliveries for message in smtp_sink.messages()}
    assert by_subject == {"Receipt": 2, "Other": 1}


def test_messages_without_a_message_id_are_each_kept(smtp_sink: SmtpSink) -> None:
    _send(smtp_sink, _message("A", message_id=None))
    _send(smtp_sink, _message("A", message_id=None))
    assert len(smtp_sink.messages()) == 2


def test_the_shops_backend_uses_the_connect_timeout_then_the_send_timeout(smtp_sink: SmtpSink) -> None:
    backend = SMTPBackend(host="127.0.0.1", port=smtp_sink.port, connect_timeout=1.5, timeout=7.0)
    try:
        assert backend.open()
        assert backend.connection is not None and backend.connection.sock is not None
        assert backend.connection.sock.gettimeout() == 7.0  # every command after the connect
        assert backend.timeout == 7.0
    finally:
        backend.close()


def test_a_server_that_accepts_the_connection_and_never_greets_fails_within_the_connect_timeout() -> None:
    """A hung relay must cost the worker the connect timeout, never the task's whole time limit."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    thread.start()
    backend = SMTPBackend(host="127.0.0.1", port=listener.getsockname()[1], connect_timeout=0.5, timeout=600)
    try:
        # The greeting never comes: after the connect timeout, not the 600 s send timeout, the client gives up.
        with pytest.raises(smtplib.SMTPServerDisconnected, match="timed out"):
            backend.open()
    finally:
        listener.close()
        for connection in accepted:
            connection.close()


# --- The development page ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_lists_the_messages_and_shows_one(smtp_sink: SmtpSink) -> None:
    _send(smtp_sink, _message("Receipt for SO-000042"))
    client = Client()
    listing = client.get("/dev/mail/")
    assert listing.status_code == 200
    assert b"Receipt for SO-000042" in listing.content and b"order_paid" in listing.content
    (stored,) = smtp_sink.messages()
    detail = client.get(f"/dev/mail/{stored.name}/")
    assert detail.status_code == 200
    assert b"Plain text body" in detail.content
    assert b"SO-000042" in detail.content


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["../../etc/passwd", "journal.jsonl", "..%2F..%2Fsecret.eml", "x" * 300])
def test_only_names_the_sink_writes_are_ever_opened(smtp_sink: SmtpSink, name: str) -> None:
    assert Client().get(f"/dev/mail/{name}/").status_code == 404


@pytest.mark.django_db
def test_the_page_is_404_in_production(smtp_sink: SmtpSink, settings: Any) -> None:
    _send(smtp_sink, _message("Receipt"))
    settings.MAIL_SINK_PAGE_ENABLED = False  # what DJANGO_ENV=production sets
    (stored,) = smtp_sink.messages()
    assert Client().get("/dev/mail/").status_code == 404
    assert Client().get(f"/dev/mail/{stored.name}/").status_code == 404


@pytest.mark.django_db
def test_the_page_is_404_for_a_browser_on_another_machine(smtp_sink: SmtpSink) -> None:
    assert Client(REMOTE_ADDR="192.0.2.10").get("/dev/mail/").status_code == 404
    assert Client(REMOTE_ADDR="::1").get("/dev/mail/").status_code == 200
