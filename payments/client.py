"""The shop's client for the payment provider. Every call has a timeout and carries an idempotency key."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import httpx
from django.conf import settings


class ProviderUnavailable(Exception):
    """The provider did not give a final answer (timeout, connection error, 5xx): safe to retry later."""


class ProviderDeclined(Exception):
    """The provider gave a final 'no' for this charge: do not retry."""


@dataclass(frozen=True)
class Charge:
    charge_id: str
    status: str


def _client() -> httpx.Client:
    timeout = settings.PAYMENT_PROVIDER_TIMEOUT_S
    # Hung dependency: connect and read both give up, so a slow provider cannot hold a worker forever.
    return httpx.Client(
        base_url=settings.PAYMENT_PROVIDER_URL, timeout=httpx.Timeout(timeout, connect=min(timeout, 2.0))
    )


def _post(path: str, *, idempotency_key: str, body: dict[str, object]) -> httpx.Response:
    try:
        with _client() as client:
            response = client.post(path, json=body, headers={"Idempotency-Key": idempotency_key})
    except httpx.HTTPError as error:
        raise ProviderUnavailable(f"{type(error).__name__}: {error}") from error
    if response.status_code >= 500:
        raise ProviderUnavailable(f"provider answered {response.status_code}")
    return response


def provider_charge(*, idempotency_key: str, amount: Decimal, currency: str, reference: str) -> Charge:
    response = _post(
        "/v1/charges",
        idempotency_key=idempotency_key,
        body={"amount": str(amount), "currency": currency, "reference": reference},
    )
    if response.status_code == 402:
        raise ProviderDeclined(response.json().get("id", ""))
    if response.status_code not in (200, 201):
        raise ProviderUnavailable(f"unexpected provider answer {response.status_code}")
    data = response.json()
    return Charge(charge_id=data["id"], status=data["status"])


def provider_refund(*, idempotency_key: str, charge_id: str) -> str:
    response = _post("/v1/refunds", idempotency_key=idempotency_key, body={"charge_id": charge_id})
    if response.status_code not in (200, 201):
        raise ProviderUnavailable(f"unexpected provider answer {response.status_code}")
    refund_id: str = response.json()["id"]
    return refund_id
