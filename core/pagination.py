"""Pagination with hard ceilings: no list, API or HTML, returns or counts an unbounded number of rows.

- API: cursor pagination (keyset: `WHERE id < cursor ORDER BY id DESC LIMIT n`), page_size at most 100.
- HTML: BoundedPaginator, numbered pages whose COUNT and OFFSET stop at HTML_MAX_PAGES pages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Paginator
from django.db.models import Field, Model, QuerySet
from django.utils.functional import cached_property
from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.views import APIView

from core.errors import NotFound as PageNotFound
from core.serializers import TEXT_PATTERN

INVALID_CURSOR = "This cursor is not one the API handed out; start again from the first page."
# What encode_cursor() writes: standard base64 (an empty `?cursor=` is the first page, as no cursor is).
_DIGITS = re.compile(r"[0-9]{1,9}")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?")


class InvalidCursor(PageNotFound):
    """A cursor names a page; one the API never handed out names no page (DRF's own answer is a 404 too)."""

    code = "invalid_cursor"
    title = "No such page."


class CursorPagination(pagination.CursorPagination):
    """The one cursor pagination of the API: every list pages through this class (or a subclass that only
    changes `ordering`), so every list refuses a tampered cursor the same way."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
    ordering = "-id"
    _model: type[Model] | None = None

    def paginate_queryset(
        self, queryset: QuerySet[Any] | Sequence[Any], request: Request, view: APIView | None = None
    ) -> list[Any] | None:
        self._model = getattr(queryset, "model", None)
        return super().paginate_queryset(queryset, request, view)

    def decode_cursor(self, request: Request) -> pagination.Cursor | None:
        encoded = request.query_params.get(self.cursor_query_param)
        if encoded is not None and not _BASE64.fullmatch(encoded):
            # b64decode() skips what is not base64, so "%%%" would decode to nothing: the first page, silently.
            raise InvalidCursor(INVALID_CURSOR)
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise InvalidCursor(INVALID_CURSOR) from None
        if cursor is not None and cursor.position is not None:
            self._check_position(str(cursor.position))
        return cursor

    def _check_position(self, position: str) -> None:
        """Tampered cursor: the position goes into `WHERE <ordering field> > %s`, so it must be a value of
        that field (base64 of `p=abc` on an id ordering was a 500 from the database, `p=` + NUL one from
        psycopg). The model field itself says what a valid value is."""
        ordering = self.ordering if isinstance(self.ordering, str) else self.ordering[0]
        if self._model is None:
            return  # a list of plain objects, not a queryset: nothing reaches the database
        try:
            field = self._model._meta.get_field(ordering.lstrip("-"))
        except FieldDoesNotExist:
            return  # an annotation: nothing to check it against (no list orders by one today)
        if not isinstance(field, Field):
            return
        try:
            if "\x00" in position:
                raise DjangoValidationError("NUL")
            field.run_validators(field.to_python(position))
        except (DjangoValidationError, ValueError, TypeError):
            raise InvalidCursor(INVALID_CURSOR) from None

    def get_schema_operation_parameters(self, view: APIView) -> list[dict[str, Any]]:
        # The document states the bounds get_page_size() enforces, so a client cannot send a size it refuses.
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1, "maximum": self.max_page_size}
                parameter["description"] = f"1-{self.max_page_size}, default {self.page_size}."
            elif parameter["name"] == self.cursor_query_param:
                parameter["description"] = "From the `next` or `previous` link of the page you have; opaque."
                parameter["schema"] = {"type": "string", "pattern": TEXT_PATTERN}
        return parameters

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        paginated: dict[str, Any] = super().get_paginated_response_schema(schema)
        paginated["required"] = ["next", "previous", "results"]  # always present, null at either end
        return paginated

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        # int() also takes " 5", "+5" and an Arabic-Indic five (U+0665); the document says digits, so do we.
        if not _DIGITS.fullmatch(raw):
            raise ValidationError({"page_size": ["Must be a whole number."]})
        size = int(raw)
        # Unbounded list: a page_size of 10,000 is refused, not silently served.
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({"page_size": [f"Must be between 1 and {self.max_page_size}."]})
        return size


HTML_MAX_PAGES = 20


class BoundedPaginator(Paginator):  # type: ignore[type-arg]
    """Numbered HTML pages, at most `max_pages` of them.

    Growing page cost: a plain Paginator runs COUNT(*) over every matching row on every page view (100,000
    orders: the whole index, each time) and lets ?page=4000 become OFFSET 40,000. Here the count reads at most
    max_pages * per_page rows, and pages past that are not offered; narrower filters reach further.
    """

    def __init__(
        self,
        object_list: QuerySet[Any] | Sequence[Any],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
        *,
        max_pages: int = HTML_MAX_PAGES,
    ) -> None:
        # The same signature as Paginator, so ModelAdmin.paginator can use it too.
        super().__init__(object_list, per_page, orphans, allow_empty_first_page)
        self.max_pages = max_pages

    @cached_property
    def row_limit(self) -> int:
        return int(self.per_page) * self.max_pages

    @cached_property
    def count(self) -> int:
        # SELECT COUNT(*) FROM (SELECT ... LIMIT n): stops after n rows, read in index order.
        if isinstance(self.object_list, QuerySet):
            return self.object_list[: self.row_limit].count()
        return len(self.object_list[: self.row_limit])

    @property
    def is_truncated(self) -> bool:
        """True when there are more rows than the pages offer (show "500+" rather than "500")."""
        return self.count >= self.row_limit
