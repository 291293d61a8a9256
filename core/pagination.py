"""Pagination with hard ceilings: no list, API or HTML, returns or counts an unbounded number of rows.

- API: cursor pagination (keyset: `WHERE id < cursor ORDER BY id DESC LIMIT n`), page_size at most 100.
- HTML: BoundedPaginator, numbered pages whose COUNT and OFFSET stop at HTML_MAX_PAGES pages.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.utils.functional import cached_property
from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request


class CursorPagination(pagination.CursorPagination):
    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = settings.API_MAX_PAGE_SIZE
    ordering = "-id"

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            raise ValidationError({"page_size": ["Must be a whole number."]}) from None
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
