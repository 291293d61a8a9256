"""ETags of versioned rows (orders, products) and the If-Match header that carries one back.

Lost update: a client may only change a row from the version it read; the version travels as a strong ETag,
and `parse_if_match` reads it back for the service's conditional UPDATE.
"""

from __future__ import annotations

import re

from core.errors import PreconditionFailed, PreconditionRequired

_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')


def version_etag(version: int) -> str:
    """The ETag of a row at `version` (`Order.etag`, `Product.etag`)."""
    return f'"{version}"'


def parse_if_match(header: str | None) -> int:
    """The version the client read, from its If-Match header: 428 without one, 412 when it is no ETag of ours."""
    if not header:
        raise PreconditionRequired("Send If-Match with the ETag from your last GET of this order.")
    match = _ETAG.match(header.strip())
    if match is None:
        raise PreconditionFailed("If-Match does not hold an ETag of this order.")
    return int(match.group(1))
