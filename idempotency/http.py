"""The HTTP side of Idempotency-Key: `@idempotent` on a DRF view's POST, and the protocol is done.

The decorator claims the key before the view runs (idempotency/services.py says how a key lives), replays a
completed key's stored answer byte for byte, releases the key when the view refuses or crashes, and stores
the view's 2xx answer for every repeat. The view receives the key and the request's fingerprint, which it hands
to its service so the rows it writes remember the request that wrote them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, ParamSpec, TypeVar

from django.http import HttpResponse
from rest_framework.request import Request

from core.auth import request_user
from core.rendering import rendered_json_response
from idempotency.services import (
    check_idempotency_key,
    idempotency_claim,
    idempotency_complete,
    idempotency_release,
    request_fingerprint,
)

P = ParamSpec("P")
ViewT = TypeVar("ViewT")

REPLAYED_HEADER = "Idempotent-Replayed"
# What a stored answer does not keep: its body's own headers, and the replay marker of the first answer.
_NOT_STORED = frozenset({"content-type", "content-length", REPLAYED_HEADER.lower()})


@dataclass(frozen=True)
class IdempotentRequest:
    """The request's Idempotency-Key, and the fingerprint of its method, path and payload."""

    key: str
    fingerprint: str


def json_answer(body: str, *, status: int, headers: dict[str, str], replayed: bool = False) -> HttpResponse:
    """An already rendered JSON answer, as first sent or as replayed (`Idempotent-Replayed: true`)."""
    response = rendered_json_response(body, status=status, headers=headers)
    if replayed:
        response[REPLAYED_HEADER] = "true"
    return response


def idempotent(
    handler: Callable[Concatenate[ViewT, Request, IdempotentRequest, P], HttpResponse],
) -> Callable[Concatenate[ViewT, Request, P], HttpResponse]:
    """Make a DRF view method idempotent under the Idempotency-Key header.

    The handler returns a rendered `HttpResponse` (see `json_answer`); it is stored as sent when it is a 2xx.
    """

    @functools.wraps(handler)
    def wrapper(view: ViewT, request: Request, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        key = check_idempotency_key(request.headers.get("Idempotency-Key"))
        fingerprint = request_fingerprint(method=request.method or "POST", path=request.path, payload=request.data)
        claim = idempotency_claim(user=request_user(request), key=key, fingerprint=fingerprint)
        if claim.is_replay:
            # Double submit / client retry: the first answer again, byte for byte.
            record = claim.record
            # A replay is of a completed record, which the database guarantees has its status (the CHECK in
            # idempotency/models.py): no default here that would answer a corrupt row with 201.
            assert record.response_status is not None
            return json_answer(
                record.response_body,
                status=record.response_status,
                headers=record.response_headers,
                replayed=True,
            )
        try:
            response = handler(view, request, IdempotentRequest(key=key, fingerprint=fingerprint), *args, **kwargs)
        except BaseException:
            # Refused or crashed (a reused key included): nothing was written, so the key is free again.
            idempotency_release(record=claim.record)
            raise
        if not 200 <= response.status_code < 300:
            idempotency_release(record=claim.record)  # a refusal is not stored: the same key may try again
            return response
        headers = {name: value for name, value in response.items() if name.lower() not in _NOT_STORED}
        idempotency_complete(
            record=claim.record, status=response.status_code, body=response.content.decode(), headers=headers
        )
        return response

    return wrapper
