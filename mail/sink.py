"""A local SMTP server that keeps every message it accepts as a .eml file: the shop's mail under `make run`.

    python -m mail.sink --port 1025 --directory .run/mail

Real SMTP, not a console backend: the shop talks to it exactly as it talks to a production relay (the same
backend, the same timeouts, the same failure handling), so what works here works there. Built on aiosmtpd,
the maintained asyncio SMTP server from the Python core developers' aio-libs family.

One file per message, named from its Message-ID. A second delivery of a Message-ID already stored (the
shop's resend after a crash between "accepted" and "marked sent") is recognised, as a mailbox that keeps one
message per Message-ID would: it is recorded in journal.jsonl, one line per SMTP delivery, and not stored
again. The development page /dev/mail/ lists the messages and shows how often each was delivered.

`--hold-while PATH` (for fault tests): while PATH exists, the server stores a message and then holds its
"250 accepted" reply, so a test can stop the sender at a known point.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import threading
import time
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

from mail.mailbox import JOURNAL, message_file_name

HOLD_LIMIT_S = 120.0


class MaildirSink:
    """The aiosmtpd handler: store, journal, (optionally hold), then accept."""

    def __init__(self, directory: Path, *, hold_while: Path | None = None) -> None:
        self.directory = directory
        self.hold_while = hold_while
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw: bytes = envelope.original_content or envelope.content
        headers = BytesHeaderParser(policy=default_policy).parsebytes(raw)
        message_id = headers.get("Message-ID")
        name = message_file_name(str(message_id) if message_id else None)
        path = self.directory / name
        duplicate = path.exists()
        if not duplicate:
            envelope_lines = (
                f"X-Sink-Envelope-From: {envelope.mail_from}\r\nX-Sink-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n"
            ).encode()
            # Half-written file: written under a temporary name and renamed, so a reader never sees a partial one.
            partial = self.directory / f".{name}.partial"
            partial.write_bytes(envelope_lines + raw)
            os.replace(partial, path)
        entry = {
            "received_at": time.time(),
            "file": name,
            "message_id": str(message_id) if message_id else None,
            "duplicate": duplicate,
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "x_shop_event": headers.get("X-Shop-Event"),
            "x_shop_order": headers.get("X-Shop-Order"),
        }
        with (self.directory / JOURNAL).open("a", encoding="utf-8") as journal:
            journal.write(json.dumps(entry) + "\n")
        if self.hold_while is not None:
            held_since = time.monotonic()
            while self.hold_while.exists() and time.monotonic() - held_since < HOLD_LIMIT_S:
                await asyncio.sleep(0.02)
        return "250 Message accepted for delivery"


def serve(*, host: str, port: int, directory: Path, hold_while: Path | None = None) -> None:
    controller = Controller(
        MaildirSink(directory, hold_while=hold_while), hostname=host, port=port, enable_SMTPUTF8=True
    )
    controller.start()
    print(f"mail sink: SMTP on {host}:{port}, messages in {directory}", flush=True)
    stopped = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stopped.set())
    try:
        stopped.wait()
    finally:
        controller.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=os.environ.get("MAIL_SINK_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("EMAIL_PORT", "1025")))
    parser.add_argument("--directory", type=Path, default=Path(os.environ.get("MAIL_SINK_DIR", ".run/mail")))
    parser.add_argument("--hold-while", type=Path, default=None, help="hold each 250 reply while this path exists")
    args = parser.parse_args()
    serve(host=args.host, port=args.port, directory=args.directory, hold_while=args.hold_while)


if __name__ == "__main__":
    main()
