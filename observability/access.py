"""Who may read metrics: the one rule for the web's /metrics and the Celery worker's metrics port.

Open in development and tests. When METRICS_TOKEN is set, a scraper must send `Authorization: Bearer <token>`;
when METRICS_ALLOWED_IPS is set, requests from those addresses pass too. In production with neither set, the
answer is "hidden" (404): internal numbers are never public by accident.
"""

from __future__ import annotations

from typing import Literal

from django.conf import settings
from django.utils.crypto import constant_time_compare

Access = Literal["allowed", "unauthorized", "hidden"]


def bearer_token(authorization: str) -> str:
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def metrics_access_for(*, authorization: str, remote_addr: str) -> Access:
    token: str = settings.METRICS_TOKEN
    allowed_ips: list[str] = settings.METRICS_ALLOWED_IPS
    if not token and not allowed_ips:
        return "hidden" if settings.PRODUCTION else "allowed"
    if token and constant_time_compare(bearer_token(authorization), token):
        return "allowed"
    if allowed_ips and remote_addr in allowed_ips:
        return "allowed"
    return "unauthorized" if token else "hidden"
