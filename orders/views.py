"""Order pages: history, detail with live status, edit (optimistic locking with a conflict screen), cancel.

Every lookup goes through a selector scoped to the signed-in customer: another customer's order is a 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts.models import User
from core.auth import request_user
from core.errors import ApplicationError, PreconditionFailed
from core.problems import render_refusal
from core.web import paginate, see_other
from orders.forms import EDITABLE_FIELDS, FIELD_LABELS, OrderEditForm, order_details, sign_original
from orders.models import Order
from orders.selectors import order_get_for_customer, order_list_for_customer, order_status_get_for_customer
from orders.services import order_cancel, order_edit_merge, order_update_details

ORDERS_PER_PAGE = 10
# Live status: the page polls with backoff (1 s, x1.6, at most 10 s apart) and stops after this bound.
STATUS_POLL_BOUND_MS = 90_000


def _own_order(user: User, order_id: int) -> Order:
    # Broken object-level authorization: someone else's order is indistinguishable from a missing one (404).
    return order_get_for_customer(customer=user, order_id=order_id)


@login_required
@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    page = paginate(request, order_list_for_customer(customer=request_user(request)), per_page=ORDERS_PER_PAGE)
    return render(request, "orders/order_list.html", {"page": page})


@login_required
@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = _own_order(request_user(request), pk)
    context = {
        "order": order,
        "placed": request.GET.get("placed") if request.GET.get("placed") in {"new", "again"} else None,
        "poll_bound_ms": STATUS_POLL_BOUND_MS,
    }
    return render(request, "orders/order_detail.html", context)


@never_cache
@login_required
@require_GET
def order_status(request: HttpRequest, pk: int) -> JsonResponse:
    """What the detail page polls: small, uncached, and scoped like every other order lookup."""
    order = order_status_get_for_customer(customer=request_user(request), order_id=pk)
    return JsonResponse(
        {
            "status": order.status,
            "status_display": order.get_status_display(),
            "settled": order.is_settled,
            "version": order.version,
        }
    )


@dataclass(frozen=True)
class FieldConflict:
    label: str
    original: str | None
    latest: str
    yours: str

    @property
    def changed_by_them(self) -> bool:
        return self.original is not None and self.original != self.latest

    @property
    def changed_by_you(self) -> bool:
        return self.original is None or self.original != self.yours


def _conflict_screen(request: HttpRequest, form: OrderEditForm, latest: Order, detail: str) -> HttpResponse:
    """Stale edit: show what changed since the form was rendered, and offer re-apply or discard."""
    original = form.original_details()
    yours = form.submitted_details()
    current = order_details(latest)
    rows = [
        FieldConflict(
            label=FIELD_LABELS[name],
            original=None if original is None else str(original.get(name, "")),
            latest=current[name],
            yours=yours[name],
        )
        for name in EDITABLE_FIELDS
    ]
    # Re-apply: your edits on top of the latest version; fields you did not touch keep the other edit's value.
    merged = order_edit_merge(original=original, yours=yours, latest=current)
    reapply = OrderEditForm(initial={**merged, "version": latest.version, "original": sign_original(latest)})
    context = {
        "order": latest,
        "rows": [row for row in rows if row.changed_by_them or row.changed_by_you],
        "reapply_form": reapply,
        "detail": detail,
    }
    return render(request, "orders/order_conflict.html", context, status=409)


@login_required
@require_http_methods(["GET", "POST"])
def order_edit(request: HttpRequest, pk: int) -> HttpResponse:
    user = request_user(request)
    order = _own_order(user, pk)
    if request.method == "GET":
        if not order.is_editable:
            messages.info(request, f"Order {order.number} is {order.get_status_display().lower()}: it can't be edited.")
            return see_other(order.get_absolute_url())
        return render(request, "orders/order_edit.html", {"order": order, "form": OrderEditForm.for_order(order)})

    form = OrderEditForm(request.POST)
    if not form.is_valid():
        return render(request, "orders/order_edit.html", {"order": order, "form": form}, status=400)
    try:
        order_update_details(
            order=order,
            expected_version=form.cleaned_data["version"],
            shipping_address=form.shipping_address(),
            note=form.cleaned_data["note"],
        )
    except PreconditionFailed as error:
        return _conflict_screen(request, form, _own_order(user, pk), error.detail)
    except ApplicationError as error:
        return render_refusal(request, error, back_url=order.get_absolute_url(), back_label="Back to the order")
    messages.success(request, "Shipping details saved.")
    return see_other(order.get_absolute_url())


@login_required
@require_http_methods(["GET", "POST"])
def order_cancel_view(request: HttpRequest, pk: int) -> HttpResponse:
    order = _own_order(request_user(request), pk)
    if request.method == "GET":
        return render(request, "orders/order_cancel.html", {"order": order})
    try:
        cancelled = order_cancel(order=order)
    except ApplicationError as error:
        return render_refusal(request, error, back_url=order.get_absolute_url(), back_label="Back to the order")
    messages.success(request, f"Order {cancelled.number} is cancelled.")
    return see_other(reverse("orders:detail", kwargs={"pk": cancelled.pk}))
