"""Reading the sink's directory (mail/sink.py writes it): the development page, the tests and the load audit.

Plain Python on purpose (no Django, no aiosmtpd), so the load audit and a production import can use it.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from email import message_from_bytes
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any, cast

JOURNAL = "journal.jsonl"
# Path traversal: a name from a URL is only ever one of the names the sink itself writes.
FILE_NAME = re.compile(r"^(?:[0-9a-f]{32}|nomid-[0-9a-f]{32})\.eml$")


def message_file_name(message_id: str | None) -> str:
    """<sha256 of the Message-ID>.eml; a message without one gets a random name (it cannot be recognised)."""
    if not message_id:
        return f"nomid-{uuid.uuid4().hex}.eml"
    return f"{hashlib.sha256(message_id.strip().encode()).hexdigest()[:32]}.eml"


@dataclass(frozen=True)
class StoredMessage:
    name: str
    subject: str
    to: str
    sender: str
    date: str
    event: str
    order: str
    message_id: str
    deliveries: int
    received_at: float
    text: str = ""
    html: str = ""
    headers: list[tuple[str, str]] = field(default_factory=list)


def journal(directory: Path) -> list[dict[str, Any]]:
    """One entry per SMTP delivery the sink accepted, oldest first (duplicates of a Message-ID included)."""
    path = directory / JOURNAL
    if not path.exists():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entries.append(json.loads(line))
    return entries


def _summary(path: Path, deliveries: int) -> StoredMessage:
    headers = BytesHeaderParser(policy=default_policy).parsebytes(path.read_bytes())
    return StoredMessage(
        name=path.name,
        subject=str(headers.get("Subject", "")),
        to=str(headers.get("To", "")),
        sender=str(headers.get("From", "")),
        date=str(headers.get("Date", "")),
        event=str(headers.get("X-Shop-Event", "")),
        order=str(headers.get("X-Shop-Order", "")),
        message_id=str(headers.get("Message-ID", "")),
        deliveries=deliveries,
        received_at=path.stat().st_mtime,
    )


def stored_messages(directory: Path, *, limit: int = 200) -> list[StoredMessage]:
    """The newest `limit` messages, newest first, with how many SMTP deliveries each one had."""
    if not directory.is_dir():
        return []
    deliveries = Counter(entry["file"] for entry in journal(directory))
    paths = sorted(
        (path for path in directory.iterdir() if FILE_NAME.match(path.name)),
        key=lambda path: path.stat().st_mtime,
        reverse=True,
    )
    return [_summary(path, deliveries.get(path.name, 1)) for path in paths[:limit]]


def stored_message(directory: Path, name: str) -> StoredMessage | None:
    """One message with its text and HTML parts, or None when there is no such (well-formed) name."""
    if not FILE_NAME.match(name) or not (directory / name).is_file():
        return None
    path = directory / name
    deliveries = sum(1 for entry in journal(directory) if entry["file"] == name) or 1
    summary = _summary(path, deliveries)
    parsed = cast(EmailMessage, message_from_bytes(path.read_bytes(), policy=default_policy))
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    return replace(
        summary,
        headers=[(key, str(value)) for key, value in parsed.items()],
        text=text_part.get_content() if text_part is not None else "",
        html=html_part.get_content() if html_part is not None else "",
    )
