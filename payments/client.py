"""The shop's client for the payment provider: timeouts, retries on idempotent calls, a shared circuit breaker.

Three layers, innermost first:
1. Every HTTP call has a connect and a read timeout (a hung provider cannot hold a worker).
2. A call that is safe to repeat (GET, or a POST carrying an Idempotency-Key the provider honours) is retried
   a few times with exponential backoff and full jitter. A POST without a key is tried once: repeating it could
   charge twice.
3. The circuit breaker (payments/breaker.py), shared by every worker through Redis, stops calling a provider
   that keeps failing; callers get `CircuitOpen` at once and the order waits in pending_payment for the
   re-drive job.

What a charge answer means is decided in one place, `read_charge`, from the charge's own `status` field: a
provider replays a declined charge for a repeated key, and may answer a decline with 200; the HTTP code alone
never makes a success.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx
import structlog
from django.conf import settings

from payments.breaker import provider_breaker

logger = structlog.get_logger(__name__)

# Answers that mean "not now" rather than "no": worth another try later.
_RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class ProviderUnavailable(Exception):
    """The provider did not give a final answer (timeout, connection error, 5xx): safe to retry later."""


class CircuitOpen(ProviderUnavailable):
    """The breaker is open: the provider was not called at all. The re-drive job tries again later."""

    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"circuit open, next probe in {retry_after_s:.1f}s")
        self.retry_after_s = retry_after_s


class ChargeUndecided(ProviderUnavailable):
    """The provider answered, but the charge's status is neither a success nor a decline: not final, ask later."""


class ProviderDeclined(Exception):
    """The provider gave a final 'no' for this charge: do not retry."""


SUCCEEDED = "succeeded"
DECLINED = "declined"
# The provider's words for a final "no". Anything else that is not "succeeded" is undecided.
_DECLINED_STATUSES = frozenset({"declined", "failed", "canceled", "cancelled"})


@dataclass(frozen=True)
class Charge:
    charge_id: str
    status: str  # SUCCEEDED or DECLINED: read_charge never returns anything else


def backoff_delay(attempt: int) -> float:
    """Full jitter (AWS architecture blog): uniform in [0, min(cap, base * 2**attempt)].

    Thundering herd: without jitter every worker that failed together retries together.
    """
    ceiling = min(settings.PAYMENT_PROVIDER_RETRY_CAP_S, settings.PAYMENT_PROVIDER_RETRY_BASE_S * 2**attempt)
    return random.uniform(0, ceiling)


_clients: dict[tuple[int, str, float, float], httpx.Client] = {}
_clients_lock = threading.Lock()


def _http_client() -> httpx.Client:
    """One client per process and configuration, shared by its threads (httpx.Client is thread-safe).

    Building a client costs about 20 ms of CPU (SSL context, connection pool): per call, that was half of
    an order's CPU under load. The pid in the key gives a forked Celery child its own client and sockets.
    """
    key = (
        os.getpid(),
        settings.PAYMENT_PROVIDER_URL,
        settings.PAYMENT_PROVIDER_TIMEOUT_S,
        settings.PAYMENT_PROVIDER_CONNECT_TIMEOUT_S,
    )
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            # Hung dependency: connect and read both give up, so a slow provider cannot hold a worker forever.
            client = httpx.Client(
                base_url=settings.PAYMENT_PROVIDER_URL,
                timeout=httpx.Timeout(
                    settings.PAYMENT_PROVIDER_TIMEOUT_S,
                    connect=settings.PAYMENT_PROVIDER_CONNECT_TIMEOUT_S,
                ),
            )
            _clients[key] = client
    return client


def provider_request(
    method: str,
    path: str,
    *,
    idempotency_key: str | None = None,
    body: dict[str, Any] | None = None,
    params: dict[str, str] | None = None,
) -> httpx.Response:
    """One logical call to the provider, through the breaker, with retries when it is safe to repeat."""
    # Double charge: only a call the provider can recognise as a repeat is retried.
    idempotent = method in {"GET", "HEAD"} or idempotency_key is not None
    attempts = settings.PAYMENT_PROVIDER_MAX_ATTEMPTS if idempotent else 1
    breaker = provider_breaker()
    decision = breaker.before_call()
    if not decision.allowed:
        # Provider known to be down: fail fast instead of paying a timeout per order.
        raise CircuitOpen(decision.retry_after_s)
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    failure = "no attempt made"
    client = _http_client()
    for attempt in range(attempts):
        if attempt:
            time.sleep(backoff_delay(attempt))
        try:
            response = client.request(method, path, json=body, params=params, headers=headers)
        except httpx.HTTPError as error:
            failure = f"{type(error).__name__}: {error}"
            continue
        if response.status_code not in _RETRYABLE_STATUSES:
            breaker.record_success()  # a final answer, even a 4xx, means the provider is up
            return response
        failure = f"provider answered {response.status_code}"
    breaker.record_failure()
    logger.warning("payment provider call failed", path=path, attempts=attempts, error=failure)
    raise ProviderUnavailable(failure)


def read_charge(response: httpx.Response) -> Charge:
    """What a charge answer says: a success, a decline, or no final answer (raised as ProviderUnavailable).

    Used for every answer about a charge (a new charge, a replay of its key, the reconciliation lookup).
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    status = str(body.get("status") or "").lower()
    charge_id = str(body.get("id") or "")
    if response.status_code not in (200, 201, 402):
        raise ProviderUnavailable(f"unexpected provider answer {response.status_code}")
    # Declined card ends up paid: the charge's own status decides, never the HTTP code alone. A stored decline
    # replayed as 200, or a provider that answers every charge with 200, is still a decline.
    if status in _DECLINED_STATUSES or (response.status_code == 402 and not status):
        return Charge(charge_id=charge_id, status=DECLINED)
    # Phantom success: money is taken only when a 2xx says "succeeded" and names the charge; anything else
    # ("processing", a 402 claiming success, a missing id) is not a success.
    if status == SUCCEEDED and response.status_code in (200, 201) and charge_id:
        return Charge(charge_id=charge_id, status=SUCCEEDED)
    raise ChargeUndecided(f"provider answered {response.status_code} with charge status {status or 'missing'!r}")


def provider_charge(*, idempotency_key: str, amount: Decimal, currency: str, reference: str) -> Charge:
    """Charge once per key. Returns the successful charge; raises ProviderDeclined or ProviderUnavailable."""
    response = provider_request(
        "POST",
        "/v1/charges",
        idempotency_key=idempotency_key,
        body={"amount": str(amount), "currency": currency, "reference": reference},
    )
    charge = read_charge(response)
    if charge.status == DECLINED:
        raise ProviderDeclined(charge.charge_id)
    return charge


def provider_charge_lookup(*, idempotency_key: str) -> Charge | None:
    """Ask the provider whether this key ever produced a charge, and how it ended (None: it never charged).

    Raises ProviderUnavailable when there is no final answer (the provider is down, or the charge undecided).
    """
    response = provider_request("GET", "/v1/charges", params={"idempotency_key": idempotency_key})
    if response.status_code == 404:
        return None
    return read_charge(response)


def provider_refund(*, idempotency_key: str, charge_id: str) -> str:
    response = provider_request("POST", "/v1/refunds", idempotency_key=idempotency_key, body={"charge_id": charge_id})
    if response.status_code not in (200, 201):
        raise ProviderUnavailable(f"unexpected provider answer {response.status_code}")
    refund_id: str = response.json()["id"]
    return refund_id
