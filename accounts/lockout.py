"""What a locked-out log-in attempt gets back (django-axes calls this: settings.AXES_LOCKOUT_CALLABLE).

Brute force: after AXES_FAILURE_LIMIT failed log-ins for one username from one address, further attempts are
refused for AXES_COOLOFF_TIME, even with the right password. The web login page and the API token endpoint
count failures in the same table, so switching between them does not reset the count.
"""

from __future__ import annotations

from typing import Any

from axes.helpers import get_cool_off, get_failure_limit
from django.http import HttpRequest, HttpResponse

from core.problems import refusal_response

LOCKED_OUT_CODE = "too_many_failed_logins"


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: dict[str, Any] | None = None
) -> HttpResponse:
    cool_off = get_cool_off(request)
    retry_after = int(cool_off.total_seconds()) if cool_off else 3600
    minutes = max(1, retry_after // 60)
    detail = (
        f"Too many failed log-ins for this account from your address. Log-in is paused for up to {minutes} "
        "minutes; a correct password will not work before then."
    )
    return refusal_response(
        request,
        status=429,
        code=LOCKED_OUT_CODE,
        title="Too many failed log-ins.",
        detail=detail,
        retry_after=retry_after,
        template="accounts/locked_out.html",
        context={"minutes": minutes, "failure_limit": get_failure_limit(request, credentials or {})},
    )
