"""The API's JSON parser: DRF's, plus the bounds a stranger's body must stay within before any view sees it.

A body of a few thousand nested `[` made Python's json module give up with RecursionError (a 500 on any
POST, anonymous ones included). A lone surrogate (`"\\ud800"`) parsed into a str that psycopg cannot encode,
a 500 later, inside a service. Both are refused here, as 400 problem+json, once for every endpoint: RFC 7493
(I-JSON) calls such a text invalid anyway. NUL is refused by the fields that read it (DRF's CharField, see
core/serializers.py), so an ignored extra member may hold one without harm.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

# Deep enough for every request body the API documents (an order is 3 levels deep), and far below the
# recursion limit of everything that walks the parsed body afterwards (serializers, the request fingerprint).
MAX_JSON_DEPTH = 32


class BadCharacters(ParseError):
    default_detail = "The request body contains a lone UTF-16 surrogate: that is not text (RFC 7493)."
    default_code = "invalid_characters"


class TooDeep(ParseError):
    default_detail = f"JSON nested deeper than {MAX_JSON_DEPTH} levels."
    default_code = "too_deep"


def check_parsed_json(value: Any) -> None:
    """Walk a parsed body without recursion: refuse nesting past MAX_JSON_DEPTH and strings no encoder can
    write (a lone UTF-16 surrogate, which `"\\ud800"` decodes to)."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadCharacters() from None
        elif isinstance(item, dict | list):
            if depth >= MAX_JSON_DEPTH:
                raise TooDeep()
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)


class BoundedJSONParser(JSONParser):
    """JSON with a nesting bound and storable strings; anything else is a 400 before a serializer runs."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Mapping[str, Any] | None = None) -> Any:
        # DRF's parse: a text charset only (no decompression bombs through `bz2_codec`), strict loads (no NaN).
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Stack exhaustion: thousands of nested `[` make the decoder give up; that is the client's 400.
            raise TooDeep() from None
        # Stack exhaustion later, and surrogates that psycopg would refuse deep inside a service.
        check_parsed_json(data)
        return data
