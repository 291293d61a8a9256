"""What every simulated user shares: outcome bookkeeping, the client-side ledger, sign-in, payloads.

An outcome is named `<status> <problem code>` (e.g. `409 insufficient_stock`). Each request states the outcomes
it expects; an expected refusal is a correct answer and counts as a success in locust's statistics, anything
else (a 500, a timeout, a 200 where a 404 was owed) is a failure. 429 is always expected (the throttles are
allowed to say no), but it must carry Retry-After, as must any 503.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from locust import FastHttpUser

# 429 is a correct answer to any request under load; in stress mode (LOAD_SHED_OK=1) so is a 503 with
# Retry-After, because shedding load politely is exactly what the shop should do past its knee.
ALWAYS_EXPECTED = {"429"}
if os.environ.get("LOAD_SHED_OK") == "1":
    ALWAYS_EXPECTED.add("503")

DEFAULT_PASSWORD = os.environ.get("LOAD_PASSWORD", "demo-password-123")
# The share of customers who type their password (an argon2 hash on the server); the rest return with a
# saved session or refresh token, as most of a real crowd does.
PASSWORD_SIGNIN_SHARE = float(os.environ.get("LOAD_PASSWORD_SIGNIN_SHARE", "0.2"))

ADDRESSES = [
    {
        "name": "Ada Lovelace",
        "line1": "12 Analytical St",
        "line2": "",
        "city": "Berlin",
        "postal_code": "10115",
        "country": "DE",
    },
    {
        "name": "Jan Jansen",
        "line1": "Coolsingel 40",
        "line2": "3rd floor",
        "city": "Rotterdam",
        "postal_code": "3011AD",
        "country": "NL",
    },
    {
        "name": "Maria Rossi",
        "line1": "Via Roma 1",
        "line2": "",
        "city": "Milano",
        "postal_code": "20121",
        "country": "IT",
    },
    {
        "name": "Pat Doe",
        "line1": "1 Main St",
        "line2": "",
        "city": "Springfield",
        "postal_code": "12345",
        "country": "US",
    },
]


@dataclass
class Result:
    status: int
    outcome: str
    expected: bool
    data: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    text: str = ""


def outcome_name(status: int, data: Any) -> str:
    code = data.get("code") if isinstance(data, dict) else None
    return f"{status} {code}" if code else str(status)


def _is_expected(status: int, outcome: str, expect: Iterable[str]) -> bool:
    allowed = set(expect) | ALWAYS_EXPECTED
    return outcome in allowed or str(status) in allowed


def call(
    user: FastHttpUser,
    method: str,
    path: str,
    *,
    name: str,
    expect: Iterable[str],
    token: str | None = None,
    headers: dict[str, str] | None = None,
    json_body: Any = None,
    data: Any = None,
    allow_redirects: bool = True,
) -> Result:
    """One request, judged against the outcomes the caller expects. Never raises for an HTTP answer.

    A request that dies on a stale keep-alive connection (the server closed it while it sat idle in the
    pool, before any byte of an answer) is sent once more on a fresh connection, as browsers do. Every
    request here is safe to repeat (GETs; writes carry an Idempotency-Key, a form key or an If-Match), and
    the first attempt stays in the samples under its own name, `<error> (retried)`.
    """
    send_headers = {"Accept": "application/json"} if path.startswith("/api/") else {}
    if token:
        send_headers["Authorization"] = f"Bearer {token}"
    send_headers.update(headers or {})
    result = _attempt(user, method, path, name, expect, send_headers, json_body, data, allow_redirects, retry=True)
    if result is None:
        result = _attempt(user, method, path, name, expect, send_headers, json_body, data, allow_redirects, retry=False)
    assert result is not None
    return result


STALE_CONNECTION_ERRORS = {"HTTPConnectionClosed", "ConnectionResetError", "BrokenPipeError", "EmptyResponse"}


def _attempt(
    user: FastHttpUser,
    method: str,
    path: str,
    name: str,
    expect: Iterable[str],
    send_headers: dict[str, str],
    json_body: Any,
    data: Any,
    allow_redirects: bool,
    *,
    retry: bool,
) -> Result | None:
    """One attempt; None when it died on a stale connection and may be retried."""
    # Each attempt carries its own request id: a request that died without an answer can be looked up in the
    # server's access log (answered and lost on the way, or never served at all).
    request_id = f"load-{uuid.uuid4().hex[:16]}"
    with user.client.request(
        method,
        path,
        name=name,
        headers={**send_headers, "X-Request-ID": request_id},
        json=json_body,
        data=data,
        catch_response=True,
        allow_redirects=allow_redirects,
        context={},
    ) as response:
        status = int(response.status_code or 0)
        text = ""
        parsed: Any = None
        with contextlib.suppress(Exception):
            text = response.text or ""
        if text and "json" in (response.headers.get("Content-Type") or ""):
            with contextlib.suppress(ValueError):
                parsed = json.loads(text)
        if status == 0:
            error = response.request_meta.get("exception") or getattr(response, "error", None)
            error_name = type(error).__name__ if error else "connection"
            outcome = f"error {error_name}"
            LEDGER.write("no_answer", name=name, method=method, path=path, error=error_name, request_id=request_id)
            if retry and error_name in STALE_CONNECTION_ERRORS:
                response.request_meta["context"].update(outcome=f"{outcome} (retried)", expected=True)
                response.success()
                return None
        else:
            outcome = outcome_name(status, parsed)
        expected = status != 0 and _is_expected(status, outcome, expect)
        retry_after = response.headers.get("Retry-After") if status else None
        if expected and status in (429, 503) and not retry_after:
            expected = False
            outcome = f"{outcome} without Retry-After"
        response.request_meta["context"]["outcome"] = outcome
        response.request_meta["context"]["expected"] = expected
        response.request_meta["context"]["retry_after"] = bool(retry_after)
        if expected:
            response.success()
        else:
            response.failure(f"unexpected {outcome} (expected {'/'.join(sorted(expect))})")
            _note_unexpected(name, method, path, status, outcome, text, request_id)
        resp_headers = {key.lower(): value for key, value in (response.headers or {}).items()} if status else {}
        return Result(status=status, outcome=outcome, expected=expected, data=parsed, headers=resp_headers, text=text)


_UNEXPECTED_SEEN: dict[str, int] = {}


def _note_unexpected(name: str, method: str, path: str, status: int, outcome: str, text: str, request_id: str) -> None:
    """Keep the first few bodies of each unexpected answer in the ledger, with the request id to find the server's
    side of it in its log: the report's evidence."""
    seen = _UNEXPECTED_SEEN.get(name, 0)
    _UNEXPECTED_SEEN[name] = seen + 1
    if seen < 20:
        LEDGER.write(
            "unexpected",
            name=name,
            method=method,
            path=path,
            status=status,
            outcome=outcome,
            body=text[:800],
            request_id=request_id,
        )


# --- The client-side ledger ----------------------------------------------------------------------------------


class Ledger:
    """JSON lines, one file per locust process: every accepted order, every probe of someone else's order."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handle: Any = None

    def _file(self) -> Any:
        if self._handle is None:
            directory = Path(os.environ.get("LOAD_LEDGER_DIR", "loadtests/results/ledger"))
            directory.mkdir(parents=True, exist_ok=True)
            self._handle = (directory / f"ledger-{os.getpid()}.jsonl").open("a", buffering=1)
        return self._handle

    def write(self, kind: str, **fields: Any) -> None:
        line = json.dumps({"kind": kind, "t": round(time.time(), 3), **fields}, sort_keys=True)
        with self._lock:
            self._file().write(line + "\n")

    def order_accepted(self, *, username: str, key: str, order: dict[str, Any], via: str, replayed: bool) -> None:
        self.write(
            "order_accepted",
            username=username,
            key=key,
            order_id=order.get("id"),
            number=order.get("number"),
            lines=[[line.get("product_id"), line.get("quantity")] for line in order.get("lines", [])],
            via=via,
            replayed=replayed,
        )

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


LEDGER = Ledger()


# --- What the users know about the shop ----------------------------------------------------------------------


@dataclass
class Catalog:
    """Filled once per locust process at test start, from the seed fixture or by reading the public API."""

    product_ids: list[int] = field(default_factory=list)
    rush_product_ids: list[int] = field(default_factory=list)
    category_slugs: list[str] = field(default_factory=list)
    product_slugs: dict[int, str] = field(default_factory=dict)
    buyers: list[str] = field(default_factory=list)
    curious: list[str] = field(default_factory=list)
    password: str = DEFAULT_PASSWORD
    # Returning customers, by account pool: (username, refresh token), each used once (refresh tokens rotate);
    # and (username, session id) for the web shop.
    app_sessions: dict[str, deque[tuple[str, str]]] = field(default_factory=dict)
    web_sessions: deque[tuple[str, str]] = field(default_factory=deque)
    web_pages: bool = False
    web_checkout: bool = False
    # Orders placed by anyone in this process, for the curious to probe: (order_id, owner username).
    recent_orders: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=500))
    max_order_id: int = 0
    _next_account: dict[str, int] = field(default_factory=dict)

    def account(self, pool: str) -> str:
        """Hand out accounts round-robin so concurrent users mostly sign in as different customers."""
        accounts = self.buyers if pool == "buyers" else self.curious
        index = self._next_account.get(pool, random.randrange(len(accounts)))
        self._next_account[pool] = index + 1
        return accounts[index % len(accounts)]

    def note_order(self, order_id: int, owner: str) -> None:
        self.recent_orders.append((order_id, owner))
        self.max_order_id = max(self.max_order_id, order_id)


CATALOG = Catalog()


def load_fixture(path: str | None) -> bool:
    if not path or not Path(path).exists():
        return False
    fixture = json.loads(Path(path).read_text())
    CATALOG.product_ids = fixture["product_ids"]
    CATALOG.rush_product_ids = fixture["rush_product_ids"]
    CATALOG.category_slugs = fixture["category_slugs"]
    CATALOG.product_slugs = {int(pid): slug for pid, slug in fixture.get("product_slugs", {}).items()}
    CATALOG.buyers = fixture["buyers"]
    CATALOG.curious = fixture["curious"]
    CATALOG.password = fixture.get("password", DEFAULT_PASSWORD)
    app_sessions = fixture.get("app_sessions", {})
    CATALOG.app_sessions = {
        "buyers": deque((name, app_sessions[name]) for name in CATALOG.buyers if name in app_sessions),
        "curious": deque((name, app_sessions[name]) for name in CATALOG.curious if name in app_sessions),
    }
    CATALOG.web_sessions = deque(fixture.get("web_sessions", {}).items())
    CATALOG.max_order_id = fixture.get("max_order_id", 0)
    return True


def new_key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def order_payload(product_ids: list[int], *, max_quantity: int = 3, note: str = "") -> dict[str, Any]:
    return {
        "lines": [{"product_id": pid, "quantity": random.randint(1, max_quantity)} for pid in product_ids],
        "shipping_address": random.choice(ADDRESSES),
        "note": note,
    }


@dataclass
class Session:
    """A signed-in API customer. The access token lives 5 minutes; on a 401 the user signs in again."""

    username: str
    access: str = ""
    refresh: str = ""
    signed_in_at: float = 0.0


def sign_in(user: FastHttpUser, username: str) -> Session | None:
    result = call(
        user,
        "POST",
        "/api/v1/auth/token/",
        name="POST /api/v1/auth/token/",
        expect={"200"},
        json_body={"username": username, "password": CATALOG.password},
    )
    if result.status != 200 or not isinstance(result.data, dict):
        return None
    return Session(username, result.data["access"], result.data.get("refresh", ""), time.monotonic())


def resume(user: FastHttpUser, pool: str) -> Session | None:
    """A returning app user: trade a saved refresh token for an access token (no password hash)."""
    saved = CATALOG.app_sessions.get(pool)
    if not saved:
        return None
    username, refresh = saved.popleft()
    result = call(
        user,
        "POST",
        "/api/v1/auth/token/refresh/",
        name="POST /api/v1/auth/token/refresh/",
        expect={"200"},
        json_body={"refresh": refresh},
    )
    if result.status != 200 or not isinstance(result.data, dict):
        return None
    return Session(username, result.data["access"], result.data.get("refresh", ""), time.monotonic())


def register(user: FastHttpUser) -> Session | None:
    """A brand-new customer: register, then sign in, as the API contract describes."""
    username = f"new-{uuid.uuid4().hex[:12]}"
    password = f"Load-{uuid.uuid4().hex}"
    result = call(
        user,
        "POST",
        "/api/v1/auth/register/",
        name="POST /api/v1/auth/register/",
        expect={"201"},
        json_body={"username": username, "email": f"{username}@load.example", "password": password},
    )
    if result.status != 201:
        return None
    token = call(
        user,
        "POST",
        "/api/v1/auth/token/",
        name="POST /api/v1/auth/token/",
        expect={"200"},
        json_body={"username": username, "password": password},
    )
    if token.status != 200 or not isinstance(token.data, dict):
        return None
    return Session(username, token.data["access"], token.data.get("refresh", ""), time.monotonic())


def refresh_if_old(user: FastHttpUser, session: Session) -> None:
    """Refresh the access token a minute before it expires (rotation: the refresh token changes too)."""
    if time.monotonic() - session.signed_in_at < 240 or not session.refresh:
        return
    result = call(
        user,
        "POST",
        "/api/v1/auth/token/refresh/",
        name="POST /api/v1/auth/token/refresh/",
        expect={"200"},
        json_body={"refresh": session.refresh},
    )
    if result.status == 200 and isinstance(result.data, dict):
        session.access = result.data["access"]
        session.refresh = result.data.get("refresh", session.refresh)
        session.signed_in_at = time.monotonic()
