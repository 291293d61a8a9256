"""Small helpers every HTML view of the shop shares (catalog, cart, orders, backoffice): the form token, bounded
pagination and Post/Redirect/Get. The refusal page is built with the API's refusals, in core/problems.py."""

from __future__ import annotations

import secrets
from typing import Any

from django.core.paginator import Page
from django.db.models import QuerySet
from django.forms import Form
from django.http import HttpRequest, HttpResponseRedirect

from core.errors import ApplicationError
from core.pagination import BoundedPaginator


def new_form_token() -> str:
    """A fresh key for one rendered write form (checkout, add to cart): 128 random bits."""
    return secrets.token_urlsafe(16)


def paginate(request: HttpRequest, queryset: QuerySet[Any], *, per_page: int) -> Page[Any]:
    # Bad input: ?page=abc or ?page=99999 lands on a real page (first or last) instead of an error.
    # Growing page cost: COUNT and OFFSET stop at HTML_MAX_PAGES pages, whatever the size of the table.
    return BoundedPaginator(queryset, per_page).get_page(request.GET.get("page"))


def see_other(url: str) -> HttpResponseRedirect:
    """Post/Redirect/Get with 303: a reload of the next page never re-sends the form."""
    response = HttpResponseRedirect(url)
    response.status_code = 303
    return response


def form_errors_from(form: Form, refusal: ApplicationError) -> None:
    """Show a service's refusal on the form that asked: its `errors` on their fields, else its detail on top."""
    for field, field_errors in refusal.extra.get("errors", {}).items():
        for message in field_errors:
            form.add_error(field if field in form.fields else None, message)
    if not refusal.extra.get("errors"):
        form.add_error(None, refusal.detail)
