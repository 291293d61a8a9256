"""Error tracking: unhandled errors in views and tasks reach Sentry with the request id and user id, and
without passwords, tokens, card data, addresses or session cookies.

Three layers keep secrets out, because any one of them can miss something:
1. `send_default_pii=False`, no request bodies and no local variables: the SDK never collects most of it.
2. An EventScrubber with the shop's own denylist (card and address fields), applied recursively to request,
   extra, breadcrumb and span data.
3. `scrub_event` (before_send): keeps only an allow-list of headers, drops cookies and bodies, filters query
   strings and task arguments, and masks anything shaped like a card number or a bearer token in any string.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
from sentry_sdk.integrations.redis import RedisIntegration
from sentry_sdk.scrubber import DEFAULT_DENYLIST, DEFAULT_PII_DENYLIST, EventScrubber

from core.request_context import current_request_id
from observability.context import current_user_id

FILTERED = "[Filtered]"

# Keys whose values never leave the process, wherever they appear in an event (compared lower-case).
SHOP_DENYLIST = [
    *DEFAULT_DENYLIST,
    *DEFAULT_PII_DENYLIST,
    "access",
    "refresh",
    "jwt",
    "idempotency_key",
    "card",
    "card_number",
    "cardnumber",
    "pan",
    "cvc",
    "cvv",
    "expiry",
    "iban",
    "email",
    "address",
    "shipping_address",
    "shipping_name",
    "shipping_line1",
    "shipping_line2",
    "shipping_city",
    "shipping_postal_code",
    "line1",
    "line2",
    "city",
    "postal_code",
    "phone",
    "note",
]
_DENIED = {key.lower() for key in SHOP_DENYLIST}

# Request headers worth having in an issue; everything else (Authorization, Cookie, X-Forwarded-For...) is dropped.
ALLOWED_HEADERS = {"accept", "content-type", "content-length", "host", "user-agent", "x-request-id"}

_CARD_NUMBER = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_BEARER = re.compile(r"(?i)\b(bearer|token)\s+[A-Za-z0-9._~+/=-]{8,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")

# Our own lifecycle lines restate errors the Django and Celery integrations already report with the stack.
_LOGGERS_NOT_REPORTED = ("observability.access", "observability.celery", "observability.tasks")


def _luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def mask_secrets_in_text(text: str) -> str:
    """Card numbers (Luhn-valid digit runs) and bearer/JWT tokens inside free text, e.g. exception messages."""

    def _card(match: re.Match[str]) -> str:
        digits = re.sub(r"\D", "", match.group(0))
        return FILTERED if _luhn_valid(digits) else match.group(0)

    text = _CARD_NUMBER.sub(_card, text)
    text = _JWT.sub(FILTERED, text)
    return _BEARER.sub(lambda match: f"{match.group(1)} {FILTERED}", text)


def _mask_text_everywhere(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets_in_text(value)
    if isinstance(value, dict):
        return {key: _mask_text_everywhere(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_text_everywhere(item) for item in value]
    return value


def _filter_query_string(query_string: Any) -> str:
    if not isinstance(query_string, str):
        return ""
    pairs = parse_qsl(query_string, keep_blank_values=True)
    return urlencode([(key, FILTERED if key.lower() in _DENIED else value) for key, value in pairs])


def _scrub_request(request: dict[str, Any]) -> None:
    # Secrets travel in bodies, cookies and auth headers: none of them is sent.
    request.pop("data", None)
    request.pop("cookies", None)
    request.pop("env", None)
    headers = request.get("headers")
    if isinstance(headers, dict):
        request["headers"] = {name: value for name, value in headers.items() if name.lower() in ALLOWED_HEADERS}
    if "query_string" in request:
        request["query_string"] = _filter_query_string(request["query_string"])


def add_shop_context(event: dict[str, Any]) -> None:
    """One id finds the story: the Sentry issue carries the request id the logs and the response carry."""
    request_id = current_request_id.get()
    tags = event.setdefault("tags", {})
    if request_id is not None and isinstance(tags, dict):
        tags["request_id"] = request_id
    user_id = current_user_id()
    # Only the opaque id: no username, email or IP address.
    event["user"] = {"id": user_id} if user_id is not None else {}


def scrub_event(event: Any, hint: Any) -> Any:
    """before_send and before_send_transaction: add the request id and user id, remove secrets."""
    add_shop_context(event)
    if isinstance(event.get("request"), dict):
        _scrub_request(event["request"])
    celery_job = event.get("extra", {}).get("celery-job")
    if isinstance(celery_job, dict):
        # Task arguments are ids by convention; a task that breaks the convention must not leak its payload.
        celery_job["args"] = FILTERED
        celery_job["kwargs"] = FILTERED
    return _mask_text_everywhere(event)


def sentry_init(
    *,
    dsn: str,
    environment: str,
    release: str | None,
    sample_rate: float,
    traces_sample_rate: float,
) -> bool:
    """Start the SDK from settings. Without a DSN nothing is installed and nothing is sent."""
    if not dsn:
        return False
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        sample_rate=sample_rate,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        # Locals hold request payloads (addresses, card fields) inside reprs no key-based scrubber can see.
        include_local_variables=False,
        max_request_body_size="never",
        event_scrubber=EventScrubber(denylist=list(SHOP_DENYLIST), recursive=True),
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        integrations=[
            DjangoIntegration(transaction_style="url"),
            # Retries exhausted: the final failure is reported; each retry before it is not an error.
            CeleryIntegration(monitor_beat_tasks=False),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
            RedisIntegration(),
        ],
    )
    for logger_name in _LOGGERS_NOT_REPORTED:
        ignore_logger(logger_name)
    return True


def report_invariant_violation(*, invariant: str, detail: str, violations: list[str]) -> None:
    """A data invariant broke: one Sentry issue per invariant (fingerprint), whatever the row ids."""
    with sentry_sdk.new_scope() as scope:
        scope.fingerprint = ["invariant-violation", invariant]
        scope.set_tag("invariant", invariant)
        scope.set_extra("violations", violations[:20])
        sentry_sdk.capture_message(f"Invariant violated: {invariant}: {detail}", level="error")
