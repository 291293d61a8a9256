"""A tiny Sentry-compatible envelope receiver: the real SDK sends to it exactly as it would send to sentry.io.

It accepts POST /api/<project>/envelope/ (and the legacy /store/), undoes the transport compression (gzip or
brotli), keeps the raw bytes for secret scans, and parses the envelope items into events.
"""

from __future__ import annotations

import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.lower().strip()
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli

        decompressed: bytes = brotli.decompress(body)
        return decompressed
    return body


def parse_envelope(payload: bytes) -> list[tuple[dict[str, Any], bytes]]:
    """[(item header, item payload)] of a Sentry envelope (newline-delimited, optional explicit lengths)."""
    _, _, rest = payload.partition(b"\n")
    items = []
    while rest.strip():
        header_line, _, rest = rest.partition(b"\n")
        if not header_line.strip():
            continue
        header = json.loads(header_line)
        length = header.get("length")
        if length is not None:
            body, rest = rest[:length], rest[length:]
            rest = rest[1:] if rest.startswith(b"\n") else rest
        else:
            body, _, rest = rest.partition(b"\n")
        items.append((header, body))
    return items


class SentryReceiver:
    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.items: list[tuple[dict[str, Any], bytes]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = _decompress(self.rfile.read(length), self.headers.get("Content-Encoding", ""))
                with receiver._lock:
                    receiver.raw.append(body)
                    if self.path.rstrip("/").endswith("/envelope"):
                        receiver.items.extend(parse_envelope(body))
                    else:
                        receiver.items.append(({"type": "event"}, body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def dsn(self) -> str:
        return f"http://public@127.0.0.1:{self._server.server_address[1]}/1"

    def start(self) -> SentryReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def events(self, item_type: str = "event") -> list[dict[str, Any]]:
        with self._lock:
            return [json.loads(body) for header, body in self.items if header.get("type") == item_type]

    def raw_text(self) -> str:
        with self._lock:
            return b"\n".join(self.raw).decode("utf-8", errors="replace")

    def wait_for_event(self, matches: Callable[[dict[str, Any]], bool], timeout_s: float = 45) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for event in self.events():
                if matches(event):
                    return event
            time.sleep(0.2)
        raise AssertionError(f"no matching Sentry event within {timeout_s}s; got {self.events()!r}"[:4000])


def exception_types(event: dict[str, Any]) -> list[str]:
    return [value.get("type", "") for value in event.get("exception", {}).get("values", [])]
