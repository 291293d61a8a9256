"""What every workshop load user shares: the fixture, the ledger, the seeded plan, and one request helper.

Twin and fixed users are the same class with a different `side`: user number i on the twin side has the same
account number, the same random seed and therefore the same plan as user number i on the fixed side, so both
sides get the same offered load at the same time. Locust's own success/failure table is not the score: every
answer is written to the ledger, and the audit (workshop/audit.py) judges it against the database.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import gevent
from locust import FastHttpUser

MODE = os.environ.get("WORKSHOP_MODE", "races")
FIXTURE: dict[str, Any] = json.loads(Path(os.environ["WORKSHOP_FIXTURE"]).read_text())
PRESET: dict[str, Any] = FIXTURE["preset"]
HOSTS = {"twin": os.environ.get("WORKSHOP_TWIN_HOST", ""), "fixed": os.environ.get("WORKSHOP_FIXED_HOST", "")}
# Exam mode: the twin is reached through the unnamed dispatcher instead of its own prefix.
TWIN_PREFIX = os.environ.get("WORKSHOP_TWIN_PREFIX", f"/workshop/twin/{MODE}/")
SEED = os.environ.get("WORKSHOP_SEED", "workshop")
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical St",
    "line2": "",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}


class Ledger:
    """JSON lines, one file per locust process: what each request was told, by side."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: Any = None

    def write(self, kind: str, side: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "side": side, "t": round(time.time(), 3), **fields}, sort_keys=True)
        with self._lock:
            if self._handle is None:
                directory = Path(os.environ["WORKSHOP_LEDGER_DIR"])
                directory.mkdir(parents=True, exist_ok=True)
                self._handle = (directory / f"load-{os.getpid()}.jsonl").open("a", buffering=1)
            self._handle.write(line + "\n")


LEDGER = Ledger()


@dataclass
class Answer:
    status: int  # 0: no answer at all (refused, reset, timed out)
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""
    error: str = ""


class SideUser(FastHttpUser):
    """One seeded user of one side. Subclasses set `side` (and locust's `host` and `fixed_count`)."""

    abstract = True
    side: ClassVar[str] = "twin"
    role: ClassVar[str] = "accounts"  # which fixture list this class's users are taken from
    network_timeout = float(PRESET.get("client_timeout_s", 30))
    connection_timeout = float(PRESET.get("client_timeout_s", 30))
    max_redirects = 0  # the redirect after a form post is the answer the user checks
    _numbers: ClassVar[itertools.count[int]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._numbers = itertools.count()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.number = next(type(self)._numbers)
        accounts = FIXTURE["sides"][self.side].get(self.role) or [{}]
        self.account: dict[str, Any] = accounts[self.number % len(accounts)]
        # The same seed on both sides: twin user i and fixed user i make the same moves.
        self.rng = random.Random(f"{SEED}-{MODE}-{self.role}-{self.number}")

    def wait_time(self) -> float:
        return self.rng.uniform(float(PRESET["think_min_s"]), float(PRESET["think_max_s"]))

    @property
    def side_fixture(self) -> dict[str, Any]:
        sides: dict[str, Any] = FIXTURE["sides"]
        return dict(sides[self.side])

    def twin_path(self, rest: str) -> str:
        return f"{TWIN_PREFIX}{rest}"

    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account['access']}"}

    def send(
        self,
        method: str,
        path: str,
        *,
        name: str,
        headers: dict[str, str] | None = None,
        json_body: Any = None,
        data: Any = None,
    ) -> Answer:
        """One request; never raises. Every answer counts as a success in locust: the audit is the judge."""
        send_headers = {"Accept": "application/json", "X-Request-ID": uuid.uuid4().hex, **(headers or {})}
        with self.client.request(
            method,
            path,
            name=f"{self.side} {name}",
            headers=send_headers,
            json=json_body,
            data=data,
            catch_response=True,
        ) as response:
            status = int(response.status_code or 0)
            text = ""
            try:
                text = response.text or ""
            except Exception:  # a body that never arrived is an answer too (status 0)
                text = ""
            parsed: Any = None
            if text and "json" in (response.headers.get("Content-Type") or ""):
                try:
                    parsed = json.loads(text)
                except ValueError:
                    parsed = None
            error = ""
            if status == 0:
                failure = response.request_meta.get("exception") or getattr(response, "error", None)
                error = type(failure).__name__ if failure else "connection"
            response.success()
            headers_out = {key.lower(): value for key, value in (response.headers or {}).items()} if status else {}
            return Answer(status=status, data=parsed, headers=headers_out, text=text, error=error)

    def polite_wait(self, answer: Answer) -> None:
        """429 with Retry-After: wait as told, as a well-behaved client does (the fixed path throttles)."""
        if answer.status == 429:
            gevent.sleep(min(float(answer.headers.get("retry-after", "1")), 5.0))


def new_key() -> str:
    return f"ws-{uuid.uuid4().hex}"
