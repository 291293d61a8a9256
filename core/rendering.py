"""JSON answers rendered once and sent as bytes: the catalog's cached answers, the order API's 201 and its replays.

A view that keeps (or stores) what it answered renders it here itself instead of handing DRF a `Response`:
the API's only renderer is JSON, and content negotiation has already refused any other `Accept` before the
view runs, so the bytes are what DRF would have sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.http import HttpResponse
from rest_framework.renderers import JSONRenderer


def render_json(data: Any) -> bytes:
    """`data` as the API renders it (DRF's JSONRenderer: the same encoder and separators as a `Response`)."""
    return JSONRenderer().render(data)


def rendered_json_response(
    body: bytes | str, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """An answer whose JSON body is already rendered."""
    response = HttpResponse(body, status=status, content_type="application/json")
    for name, value in (headers or {}).items():
        response[name] = value
    return response
